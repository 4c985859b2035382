"""The paper's baseline: a stacked LSTM with no external memory (Graves et al. 2014, Table 3)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from diffmem.checks import check_input, check_sizes
from diffmem.controllers import LSTMController


class LSTM(nnx.Module):
    """``layers`` LSTM layers of ``hidden_size`` units and a linear output, scanned over time.

    Called like ``NTM``: ``logits, state = model(inputs)`` with inputs (B, T, C_in), logits
    (B, T, C_out); the state is the ((c, h), ...) tuple of every layer. Every layer sees the
    input (Graves 2013), which matches the paper's parameter counts within 1% on four tasks.
    """

    has_memory = False  # no external memory, so no trace (see diffmem.plots)

    def __init__(self, input_size: int, output_size: int, *, hidden_size: int = 256,
                 layers: int = 3, rngs: nnx.Rngs):
        check_sizes(input_size=input_size, output_size=output_size, hidden_size=hidden_size,
                    layers=layers)
        self.input_size, self.output_size = input_size, output_size
        self.lstm = LSTMController(input_size, hidden_size, layers, rngs=rngs)
        self.output = nnx.Linear(hidden_size, output_size, rngs=rngs)

    def initial_state(self, batch_size: int) -> tuple:
        return self.lstm.initial_state(batch_size)

    def __call__(self, inputs: jax.Array, state: Any = None, *, return_trace: bool = False):
        if return_trace:
            raise ValueError("the LSTM baseline has no memory to trace; return_trace needs an NTM")
        inputs = check_input(inputs, 3, self.input_size, "inputs")
        if state is None:
            state = self.initial_state(inputs.shape[0])

        def body(state, x_t):
            h, state = self.lstm(x_t, state)
            return state, self.output(h)

        state, ys = jax.lax.scan(body, state, jnp.swapaxes(inputs, 0, 1))
        return jnp.swapaxes(ys, 0, 1), state
