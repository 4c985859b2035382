"""Controllers: the network that reads the task input and the read vectors and drives the heads.

A controller maps (x (B, I), state) -> (h (B, H), state). Its state is a tuple of arrays (empty
for the feed-forward controller), so that it can sit inside the NTM's state tuple and be carried
through ``jax.lax.scan``. ``dtype`` is the dtype of their computation (None: that of their
inputs and parameters), ``param_dtype`` that of their parameters and state.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn.recurrent import modified_orthogonal


class FeedForwardController(nnx.Module):
    """Feed-forward controller: ``layers`` tanh layers of ``hidden_size`` units, no state.

    With a feed-forward controller everything the NTM remembers must pass through its memory,
    which makes its memory use easy to read (paper section 4).
    """

    def __init__(self, input_size: int, hidden_size: int, layers: int = 1, *,
                 dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        sizes = [input_size] + [hidden_size] * layers
        self.layers = nnx.List(
            [nnx.Linear(a, b, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
             for a, b in zip(sizes[:-1], sizes[1:])]
        )
        self.hidden_size = hidden_size

    def initial_state(self, batch_size: int) -> tuple:
        del batch_size
        return ()

    def __call__(self, x: jax.Array, state: tuple) -> tuple[jax.Array, tuple]:
        h = x
        for layer in self.layers:
            h = jnp.tanh(layer(h))
        return h, state


class LSTMController(nnx.Module):
    """Stacked LSTM controller; its state is ((c, h) per layer), each (B, H), zeros at t = 0.

    With input skip connections as in Graves's deep LSTMs (2013), every layer sees the
    controller input: layer 1 reads x, layer l > 1 reads [x, h_{l-1}]. The top layer's h alone
    is the output (Graves 2013 also connects every layer to the output; we do not).
    """

    def __init__(self, input_size: int, hidden_size: int, layers: int = 1, *,
                 dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
        sizes = [input_size] + [input_size + hidden_size] * (layers - 1)
        # The orthogonal initialisation has no half-precision kernel: draw it in float32.
        half = {} if jnp.dtype(param_dtype).itemsize >= 4 else {
            "recurrent_kernel_init": modified_orthogonal}
        self.layers = nnx.List([
            nnx.OptimizedLSTMCell(n, hidden_size, dtype=dtype, param_dtype=param_dtype,
                                  rngs=rngs, **half)
            for n in sizes])
        self.hidden_size = hidden_size
        self.param_dtype = param_dtype

    def initial_state(self, batch_size: int) -> tuple:
        zeros = jnp.zeros((batch_size, self.hidden_size), self.param_dtype)
        return tuple((zeros, zeros) for _ in self.layers)

    def __call__(self, x: jax.Array, state: tuple) -> tuple[jax.Array, tuple]:
        h, new_state = None, []
        for layer, carry in zip(self.layers, state):
            new, h = layer(carry, x if h is None else jnp.concatenate([x, h], axis=-1))
            # The state keeps its dtype whatever the computation's (a no-op in float32).
            new_state.append(jax.tree.map(lambda a, b: a.astype(b.dtype), new, carry))
        return h, tuple(new_state)


CONTROLLERS = {"lstm": LSTMController, "feedforward": FeedForwardController}
