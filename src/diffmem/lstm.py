"""The paper's baseline: a stacked LSTM with no external memory (Graves et al. 2014, Table 3).

``LSTMCell`` runs one step and follows flax.nnx's recurrent-cell protocol; ``LSTM`` runs a
whole sequence, called like ``diffmem.NTM``. Both hold the same variables at the same paths
(``lstm``, ``output``): ``model.cell`` is a cell sharing the layer's.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from diffmem.checks import check_input, check_lengths, check_sizes
from diffmem.controllers import LSTMController
from diffmem.scan import batched_state, check_remat, over_batch_axes, scan_steps


class LSTMCell(nnx.RNNCellBase):
    """One step of the baseline, a cell of flax.nnx's protocol: ``cell(state, x_t) -> (state,
    y_t)`` with y_t = Linear(h_t) of the top layer's h_t, ``initialize_carry``,
    ``num_feature_axes``. The state is the ((c, h), ...) tuple of every layer.

    Args:
      input_size: width of x_t (C_in).
      output_size: width of y_t (C_out); None: no output layer, y_t = h_t (``hidden_size``).
      hidden_size: units per layer.  layers: number of LSTM layers.
      dtype: the dtype of the computation (None: that of the inputs and parameters).
      param_dtype: the dtype of the parameters and of the state (float32).
      rngs: nnx.Rngs for parameter initialisation.
    """

    def __init__(self, input_size: int, output_size: int | None, *, hidden_size: int = 256,
                 layers: int = 3, dtype: Any = None, param_dtype: Any = jnp.float32,
                 rngs: nnx.Rngs):
        check_sizes(input_size=input_size, hidden_size=hidden_size, layers=layers,
                    **({} if output_size is None else {"output_size": output_size}))
        self.input_size, self.output_size = input_size, output_size
        self.out_features = hidden_size if output_size is None else output_size
        self.dtype, self.param_dtype = dtype, param_dtype
        dtypes = dict(dtype=dtype, param_dtype=param_dtype)
        self.lstm = LSTMController(input_size, hidden_size, layers, rngs=rngs, **dtypes)
        self.output = None if output_size is None else nnx.Linear(
            hidden_size, output_size, rngs=rngs, **dtypes)

    @property
    def num_feature_axes(self) -> int:
        """flax.nnx's cell protocol: x_t has one feature axis, C_in."""
        return 1

    def initialize_carry(self, input_shape: tuple[int, ...], rngs: Any = None) -> tuple:
        """flax.nnx's cell protocol: ``initial_state`` (zeros) for the batch axes
        ``input_shape[:-1]`` of x_t (*B, C_in); ``rngs`` is unused."""
        del rngs
        return batched_state(self.initial_state, input_shape)

    def initial_state(self, batch_size: int) -> tuple:
        return self.lstm.initial_state(batch_size)

    def step(self, state: tuple, x: jax.Array) -> tuple[tuple, jax.Array, None]:
        """One step: ``(state, x (B, C_in)) -> (state, y (B, C_out), None)`` (no trace)."""
        h, state = self.lstm(x, state)
        if self.output is not None:
            return state, self.output(h), None
        return state, h if self.dtype is None else h.astype(self.dtype), None

    def __call__(self, state: tuple | None, x: jax.Array) -> tuple[tuple, jax.Array]:
        """``(state, x_t (*B, C_in)) -> (state, y_t (*B, C_out))``; ``state=None`` starts
        afresh."""
        x = check_input(x, None, self.input_size, "x", self.param_dtype)
        if state is None:
            state = self.initialize_carry(x.shape)
        return over_batch_axes(lambda s, x_t: self.step(s, x_t)[:2], state, x)


class _SharedCell(LSTMCell):
    """An ``LSTMCell`` whose variables are those of an ``LSTM`` layer (``LSTM.cell``)."""

    def __init__(self, layer: LSTM):  # no super().__init__: nothing new is drawn
        self.input_size, self.output_size = layer.input_size, layer.output_size
        self.out_features = layer.out_features
        self.dtype, self.param_dtype = layer.dtype, layer.param_dtype
        self.lstm, self.output = layer.lstm, layer.output


class LSTM(nnx.Module):
    """``layers`` LSTM layers of ``hidden_size`` units and a linear output, scanned over time.

    Called like ``NTM``: ``logits, state = model(inputs)`` with inputs (B, T, C_in), logits
    (B, T, C_out); the state is the ((c, h), ...) tuple of every layer, zeros at the start of
    every call unless ``state`` is passed, and ``seq_lengths`` (B,) stops each sequence's state
    after its own length (outputs after it are zeros). Every layer sees the input (Graves
    2013), which matches the paper's parameter counts within 1% on four tasks.

    Takes the arguments of ``LSTMCell``, and ``remat`` (see ``diffmem.ntm.NTM``; None by
    default: a step without a memory has little to recompute).
    """

    has_memory = False  # no external memory, so no trace (see diffmem.plots)

    def __init__(self, input_size: int, output_size: int | None, *, hidden_size: int = 256,
                 layers: int = 3, dtype: Any = None, param_dtype: Any = jnp.float32,
                 remat: str | None = None, rngs: nnx.Rngs):
        cell = LSTMCell(input_size, output_size, hidden_size=hidden_size, layers=layers,
                        dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        # The cell's modules, at the paths `lstm` and `output` that checkpoints hold.
        self.lstm, self.output = cell.lstm, cell.output
        self.input_size, self.output_size = input_size, output_size
        self.out_features = cell.out_features
        self.dtype, self.param_dtype = dtype, param_dtype
        self.remat = check_remat(remat)

    @property
    def cell(self) -> LSTMCell:
        """The one-step cell, sharing this layer's variables (for ``nnx.RNN``)."""
        return _SharedCell(self)

    def initial_state(self, batch_size: int) -> tuple:
        return self.lstm.initial_state(batch_size)

    def __call__(self, inputs: jax.Array, state: Any = None, *,
                 seq_lengths: jax.Array | None = None, return_trace: bool = False):
        if return_trace:
            raise ValueError("the LSTM baseline has no memory to trace; return_trace needs an NTM")
        inputs = check_input(inputs, 3, self.input_size, "inputs", self.param_dtype)
        seq_lengths = check_lengths(seq_lengths, inputs.shape[0])
        if state is None:
            state = self.initial_state(inputs.shape[0])
        outputs, state, _ = scan_steps(self.cell.step, state, inputs, False, remat=self.remat,
                                       seq_lengths=seq_lengths)
        return outputs, state
