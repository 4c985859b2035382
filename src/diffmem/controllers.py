"""Controllers: the network that reads the task input and the read vectors and drives the heads.

A controller maps (x (B, I), state) -> (h (B, H), state). Its state is a tuple of arrays (empty
for the feed-forward controller), so that it can sit inside the NTM's state tuple and be carried
through ``jax.lax.scan``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


class FeedForwardController(nnx.Module):
    """Feed-forward controller: ``layers`` tanh layers of ``hidden_size`` units, no state.

    With a feed-forward controller everything the NTM remembers must pass through its memory,
    which makes its memory use easy to read (paper section 4).
    """

    def __init__(self, input_size: int, hidden_size: int, layers: int = 1, *, rngs: nnx.Rngs):
        sizes = [input_size] + [hidden_size] * layers
        self.layers = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])]
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

    def __init__(self, input_size: int, hidden_size: int, layers: int = 1, *, rngs: nnx.Rngs):
        sizes = [input_size] + [input_size + hidden_size] * (layers - 1)
        self.layers = nnx.List([nnx.OptimizedLSTMCell(n, hidden_size, rngs=rngs) for n in sizes])
        self.hidden_size = hidden_size

    def initial_state(self, batch_size: int) -> tuple:
        zeros = jnp.zeros((batch_size, self.hidden_size), jnp.float32)
        return tuple((zeros, zeros) for _ in self.layers)

    def __call__(self, x: jax.Array, state: tuple) -> tuple[jax.Array, tuple]:
        h, new_state = None, []
        for layer, carry in zip(self.layers, state):
            carry, h = layer(carry, x if h is None else jnp.concatenate([x, h], axis=-1))
            new_state.append(carry)
        return h, tuple(new_state)


CONTROLLERS = {"lstm": LSTMController, "feedforward": FeedForwardController}
