"""The Neural Turing Machine (Graves, Wayne & Danihelka 2014) as Flax NNX modules.

``NTMCell`` runs one time step, ``(state, x_t) -> (state, y_t)``, and follows flax.nnx's
recurrent-cell protocol (it runs in ``nnx.RNN`` and ``nnx.Bidirectional``); ``NTM`` runs a whole
sequence with ``jax.lax.scan``, ``(inputs (B, T, C_in), state=None, *, seq_lengths=None) ->
(logits (B, T, C_out), state)``. The recurrent state is an immutable ``NTMState`` tuple;
nothing mutable hangs off the modules. docs/layers.md: the state, batch and length semantics.

Shape letters: B batch, T time, N memory rows, M row width, R read heads, W write heads,
H controller units, K shift radius.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from diffmem import addressing, memory
from diffmem.checks import check_input, check_lengths, check_sizes
from diffmem.controllers import CONTROLLERS
from diffmem.scan import (
    batched_state,
    check_remat,
    check_state_grad_clip,
    over_batch_axes,
    scan_steps,
)

MEMORY_INITS = ("constant", "learned", "random")
# Collier & Beel (2018): memory initialised to a small constant, so that every row starts
# equal and non-zero (a zero row has no direction for the cosine).
_CONSTANT_MEMORY = 1e-6
# Logit of row 0 in every head's initial weighting (all other rows 0).
_INITIAL_FOCUS = 10.0


class MemoryBuffer(nnx.Variable):
    """A fixed, untrained array of the model (the constant or random initial memory)."""


class NTMState(NamedTuple):
    """Everything the NTM carries from one step to the next."""

    controller: Any  # controller state: ((c, h), ...) per LSTM layer, () for feed-forward
    memory: jax.Array  # (B, N, M)
    read_weights: jax.Array  # (B, R, N) w^r_{t-1}
    write_weights: jax.Array  # (B, W, N) w^w_{t-1}
    reads: jax.Array  # (B, R, M) r_{t-1}


class Trace(NamedTuple):
    """What the memory did at every step, returned on request for pictures and analysis.

    Arrays are (B, T, ...) when returned by ``NTM`` and (B, ...) from ``NTMCell.step``.
    """

    read_weights: jax.Array  # (B, T, R, N)
    write_weights: jax.Array  # (B, T, W, N)
    erase: jax.Array  # (B, T, W, M)
    add: jax.Array  # (B, T, W, M)
    reads: jax.Array  # (B, T, R, M)


class HeadParams(NamedTuple):
    """One kind of head's parameters for this step, with a head axis: (B, heads, ...)."""

    key: jax.Array  # (B, h, M)
    beta: jax.Array  # (B, h)
    g: jax.Array  # (B, h)
    s: jax.Array  # (B, h, 2K+1)
    gamma: jax.Array  # (B, h)
    erase: jax.Array | None  # (B, h, M), write heads only
    add: jax.Array | None  # (B, h, M), write heads only


def head_param_size(width: int, shift_radius: int, write: bool) -> int:
    """Number of controller outputs one head needs: k, beta, g, s, gamma (+ e, a if writing)."""
    return width + 3 + (2 * shift_radius + 1) + (2 * width if write else 0)


def split_head_params(raw: jax.Array, width: int, shift_radius: int, write: bool) -> HeadParams:
    """Turn raw controller outputs (B, h, size) into named head parameters.

    This is the one place where each parameter gets its activation.
    """
    n_shifts = 2 * shift_radius + 1
    sizes = [width, 1, 1, n_shifts, 1] + ([width, width] if write else [])
    parts = jnp.split(raw, np.cumsum(sizes)[:-1].tolist(), axis=-1)
    key = jnp.tanh(parts[0])  # key k, in (-1, 1)^M
    beta = jax.nn.softplus(parts[1][..., 0])  # key strength, >= 0
    g = jax.nn.sigmoid(parts[2][..., 0])  # interpolation gate, in (0, 1)
    s = jax.nn.softmax(parts[3], axis=-1)  # shift weighting over -K..K
    gamma = 1.0 + jax.nn.softplus(parts[4][..., 0])  # sharpening, >= 1
    erase = jax.nn.sigmoid(parts[5]) if write else None  # erase vector, in (0, 1)^M
    add = jnp.tanh(parts[6]) if write else None  # add vector, in (-1, 1)^M
    return HeadParams(key, beta, g, s, gamma, erase, add)


def _address(mem: jax.Array, previous: jax.Array, p: HeadParams) -> jax.Array:
    """Weightings (B, h, N) of h heads with parameters ``p`` on memory (B, N, M)."""
    return addressing.address(mem[:, None], previous, p.key, p.beta, p.g, p.s, p.gamma)


def _check_arguments(*, controller: str, shift_radius: int, memory_rows: int,
                     read_heads: int, memory_init: str, clip: float, tape_bias: float,
                     tape_read_heads: int, output_size: int | None, **sizes: int) -> None:
    """Refuse NTM arguments out of range, naming the argument and what it must be."""
    if output_size is not None:
        sizes["output_size"] = output_size
    check_sizes(memory_rows=memory_rows, read_heads=read_heads, **sizes)
    if controller not in CONTROLLERS:
        raise ValueError(f"controller={controller!r} is not one of {sorted(CONTROLLERS)}")
    if not 0 <= shift_radius < memory_rows / 2:
        raise ValueError(
            f"shift_radius={shift_radius} must be an integer >= 0 and smaller than memory_rows "
            f"/ 2 = {memory_rows / 2:g}; the paper uses 1")
    if not 0 <= tape_read_heads <= read_heads:
        raise ValueError(f"tape_read_heads={tape_read_heads} must be between 0 and "
                         f"read_heads={read_heads}")
    if tape_read_heads and not tape_bias:
        raise ValueError(f"tape_read_heads={tape_read_heads} starts read heads with "
                         "tape_bias, which is 0: set it too, e.g. tape_bias=3")
    if tape_bias < 0 or (tape_bias and shift_radius < 1):
        raise ValueError(f"tape_bias={tape_bias} must be >= 0 (0: off), and needs "
                         f"shift_radius >= 1 (it is {shift_radius})")
    if memory_init not in MEMORY_INITS:
        raise ValueError(f"unknown memory_init {memory_init!r}; choose one of: "
                         f"{', '.join(MEMORY_INITS)}")
    if not clip > 0:
        raise ValueError(f"clip={clip!r} must be a positive number (the paper's NTMs use 20)")


def _initial_memory(memory_init: str, N: int, M: int, rngs: nnx.Rngs,
                    dtype: Any) -> nnx.Variable:
    """The memory every sequence starts from (see ``memory_init`` in ``NTMCell``)."""
    if memory_init == "constant":
        return MemoryBuffer(jnp.full((N, M), _CONSTANT_MEMORY, dtype))
    bound = 1.0 / jnp.sqrt(M)
    values = jax.random.uniform(rngs.params(), (N, M), dtype, minval=-bound, maxval=bound)
    kind = nnx.Param if memory_init == "learned" else MemoryBuffer
    return kind(values)


class NTMCell(nnx.RNNCellBase):
    """One step of the NTM, a cell of flax.nnx's protocol: ``cell(state, x_t) -> (state, y_t)``,
    ``initialize_carry``, ``num_feature_axes``; ``nnx.RNN(cell)`` runs it over a sequence.

    1. controller input: x_t concatenated with the R read vectors of step t-1
    2. controller output h_t -> each head's parameters
    3. every read head addresses and reads the memory as it stood before this step's write
    4. every write head addresses, then all of them erase and add
    (with ``read_after_write``, 4 comes before 3: the reads see this step's write)
    5. y_t = Linear([h_t, r_t])  (logits), or [h_t, r_t] itself without ``output_size``

    Args:
      input_size: width of x_t (C_in).
      output_size: width of y_t (C_out); None: no output layer, y_t = [h_t, r_t], the controller
        output and the R read vectors concatenated, H + R * M wide (``out_features``).
      controller: "lstm" or "feedforward".
      controller_size: H, units per controller layer.
      controller_layers: number of controller layers.
      read_heads: R.  write_heads: W.
      memory_rows: N.  memory_width: M.
      shift_radius: K; the heads can shift by -K..K rows per step. Must be < N / 2.
      memory_init: "constant" (1e-6 everywhere, Collier & Beel), "learned" (a trained initial
        memory) or "random" (a fixed random memory drawn at construction). In every scheme the
        initial weightings and read vectors are learned.
      clip: head parameters are computed from controller outputs clipped to [-clip, clip].
      tape_bias: b >= 0 starts every write head as a tape: its gate logit at -b and its +1
        shift logit at +b, so it keeps its previous weighting and moves it one row a step
        (b = 3, K = 1: gate 0.05, shift +1 0.91).
      tape_read_heads: the first so many read heads start as a tape too (the same biases), so
        they move with the write head row by row, from the same row.
      read_after_write: False (SPEC's order, Collier & Beel's): the reads see the memory as it
        stood before this step's write. True: the write comes first and the reads see it, as
        the paper's equations read literally (r_t from M_t). A feed-forward controller then
        gets back at step t + 1 what it wrote at step t; in SPEC's order only at t + 2.
      dtype: the dtype of the controller's and the linear layers' computation (None: that of
        their inputs and parameters, float32 by default), e.g. jnp.bfloat16. The addressing,
        the memory and the state are computed in ``param_dtype`` whatever it is (docs/layers.md
        measures why).
      param_dtype: the dtype of the parameters and of the state (float32).
      rngs: nnx.Rngs for parameter initialisation.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        *,
        controller: str = "lstm",
        controller_size: int = 100,
        controller_layers: int = 1,
        read_heads: int = 1,
        write_heads: int = 1,
        memory_rows: int = 128,
        memory_width: int = 20,
        shift_radius: int = 1,
        memory_init: str = "constant",
        clip: float = 20.0,
        tape_bias: float = 0.0,
        tape_read_heads: int = 0,
        read_after_write: bool = False,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        _check_arguments(
            input_size=input_size, output_size=output_size, controller=controller,
            controller_size=controller_size, controller_layers=controller_layers,
            read_heads=read_heads, write_heads=write_heads, memory_rows=memory_rows,
            memory_width=memory_width, shift_radius=shift_radius, memory_init=memory_init,
            clip=clip, tape_bias=tape_bias, tape_read_heads=tape_read_heads)
        self.input_size, self.output_size = input_size, output_size
        self.read_heads, self.write_heads = read_heads, write_heads
        self.memory_rows, self.memory_width = memory_rows, memory_width
        self.shift_radius, self.clip = shift_radius, clip
        self.read_after_write = bool(read_after_write)
        self.dtype, self.param_dtype = dtype, param_dtype
        N, M, R, W = memory_rows, memory_width, read_heads, write_heads
        dtypes = dict(dtype=dtype, param_dtype=param_dtype)

        self.controller = CONTROLLERS[controller](
            input_size + R * M, controller_size, controller_layers, rngs=rngs, **dtypes
        )
        self.read_size = head_param_size(M, shift_radius, write=False)
        self.write_size = head_param_size(M, shift_radius, write=True)
        self.head_params = nnx.Linear(
            controller_size, R * self.read_size + W * self.write_size, rngs=rngs, **dtypes
        )
        if tape_bias:
            self.head_params.bias = nnx.Param(self._tape_start(tape_bias, tape_read_heads))
        self.out_features = controller_size + R * M if output_size is None else output_size
        self.output = None if output_size is None else nnx.Linear(
            controller_size + R * M, output_size, rngs=rngs, **dtypes)

        # Learned initial state. Every head's initial weighting starts focused on row 0
        # (softmax of logits 10, 0, 0, ...: 99.4% on row 0), so that shifting moves a sharp
        # focus from the first step, and a constant memory's symmetry is broken. In our
        # development runs a diffuse start (random normal logits) left some seeds in a slow,
        # memory-free solution for tens of thousands of sequences; a focused start did not.
        focused = jnp.zeros((N,), param_dtype).at[0].set(_INITIAL_FOCUS)
        self.initial_read_logits = nnx.Param(jnp.tile(focused, (R, 1)))
        self.initial_write_logits = nnx.Param(jnp.tile(focused, (W, 1)))
        self.initial_reads = nnx.Param(jnp.zeros((R, M), param_dtype))
        self.memory_init = memory_init
        self.initial_memory = _initial_memory(memory_init, N, M, rngs, param_dtype)

    def _tape_start(self, tape_bias: float, tape_read_heads: int) -> jax.Array:
        """The head parameters' bias that starts the write heads and the first
        ``tape_read_heads`` read heads as tapes (see ``tape_bias`` above)."""
        R, W, M, K = self.read_heads, self.write_heads, self.memory_width, self.shift_radius
        # Each head's outputs are k (M), beta, g, s (2K + 1, shifts -K..K), ...: its gate is
        # output M + 1 and its shift +1 output M + 3 + K.
        writes = R * self.read_size + np.arange(W) * self.write_size
        tapes = np.r_[np.arange(tape_read_heads) * self.read_size, writes]
        bias = self.head_params.bias[...].at[tapes + M + 1].set(-tape_bias)
        return bias.at[tapes + M + 3 + K].set(tape_bias)

    @property
    def num_feature_axes(self) -> int:
        """flax.nnx's cell protocol: x_t has one feature axis, C_in."""
        return 1

    def initialize_carry(self, input_shape: tuple[int, ...], rngs: Any = None) -> NTMState:
        """flax.nnx's cell protocol: ``initial_state`` for the batch axes ``input_shape[:-1]``
        of x_t (*B, C_in). ``rngs`` is unused: the initial state is learned, not drawn."""
        del rngs
        return batched_state(self.initial_state, input_shape)

    def initial_state(self, batch_size: int) -> NTMState:
        """The state before the first step, the learned initial values repeated B times."""
        tile = lambda a: jnp.broadcast_to(a[...], (batch_size,) + a.shape)  # noqa: E731
        return NTMState(
            controller=self.controller.initial_state(batch_size),
            memory=tile(self.initial_memory),
            read_weights=tile(jax.nn.softmax(self.initial_read_logits[...], axis=-1)),
            write_weights=tile(jax.nn.softmax(self.initial_write_logits[...], axis=-1)),
            reads=tile(self.initial_reads),
        )

    def step(self, state: NTMState, x: jax.Array) -> tuple[NTMState, jax.Array, Trace]:
        """One step: ``(state, x (B, C_in)) -> (state, y (B, C_out), trace of this step)``."""
        B, mem = x.shape[0], state.memory  # (B, N, M)
        R, W, M, K = self.read_heads, self.write_heads, self.memory_width, self.shift_radius
        controller_in = jnp.concatenate([x, state.reads.reshape(B, R * M)], axis=-1)
        h, controller_state = self.controller(controller_in, state.controller)  # (B, H)

        # The heads' parameters and addressing are computed in the memory's dtype.
        raw = jnp.clip(self.head_params(h).astype(mem.dtype), -self.clip, self.clip)
        raw_read, raw_write = jnp.split(raw, [R * self.read_size], axis=-1)
        rp = split_head_params(raw_read.reshape(B, R, self.read_size), M, K, write=False)
        wp = split_head_params(raw_write.reshape(B, W, self.write_size), M, K, write=True)

        if self.read_after_write:
            w_w = _address(mem, state.write_weights, wp)  # (B, W, N)
            mem = memory.write_heads(mem, w_w, wp.erase, wp.add)  # (B, N, M)
            w_r = _address(mem, state.read_weights, rp)  # (B, R, N)
            reads = memory.read(mem[:, None], w_r)  # (B, R, M)
        else:
            # Read and write heads address the memory as it stood before this step's write,
            # so all R + W heads are addressed together (one batched product with the memory).
            cat = lambda a, b: jnp.concatenate([a, b], axis=1)  # noqa: E731  (B, R + W, ...)
            # The first five fields (key, beta, g, s, gamma) are the ones addressing uses.
            both = HeadParams(*(cat(a, b) for a, b in zip(rp[:5], wp[:5])), None, None)
            w = _address(mem, cat(state.read_weights, state.write_weights), both)
            w_r, w_w = w[:, :R], w[:, R:]  # (B, R, N), (B, W, N)
            reads = memory.read(mem[:, None], w_r)  # (B, R, M)
            mem = memory.write_heads(mem, w_w, wp.erase, wp.add)  # (B, N, M)

        y = self._output(jnp.concatenate([h, reads.reshape(B, R * M)], axis=-1))  # (B, C_out)
        new_state = NTMState(controller_state, mem, w_r, w_w, reads)
        return new_state, y, Trace(w_r, w_w, wp.erase, wp.add, reads)

    def _output(self, hr: jax.Array) -> jax.Array:
        """y_t from [h_t, r_t] (B, H + R * M): the output layer's, or [h_t, r_t] without one."""
        if self.output is not None:
            return self.output(hr)
        return hr if self.dtype is None else hr.astype(self.dtype)

    def __call__(self, state: NTMState | None, x: jax.Array) -> tuple[NTMState, jax.Array]:
        """``(state, x_t (*B, C_in)) -> (state, y_t (*B, C_out))``, any batch axes (usually one);
        ``state=None`` starts afresh."""
        x = check_input(x, None, self.input_size, "x", self.param_dtype)
        if state is None:
            state = self.initialize_carry(x.shape)
        return over_batch_axes(lambda s, x_t: self.step(s, x_t)[:2], state, x)


class NTM(nnx.Module):
    """An NTM over whole sequences: ``NTMCell`` scanned over time with ``jax.lax.scan``.

    ``logits, state = model(inputs)`` with inputs (B, T, C_in) gives logits (B, T, C_out) and
    the final state. Every call starts afresh from the learned initial state unless ``state``
    is passed: the state a call returned continues the sequences (the memory carried across
    calls). ``seq_lengths`` (B,) gives each sequence's length in a right-padded batch: its state
    stops changing after its own last step, which is the state returned, and its outputs after
    it are zeros. ``return_trace=True`` also returns a ``Trace`` of every step's weightings,
    erase and add vectors and read vectors. docs/layers.md has the details.

    Takes the same arguments as ``NTMCell`` (its ``model.cell``), and:
      state_grad_clip: a bound to which the gradient flowing back into the state is clipped
        elementwise at every step (None: off; see ``diffmem.scan.scan_steps``).
      remat: how each step is rematerialised in the backward pass: "auto" (at batch > 1,
        keeping the controller's matrix products; not at batch 1), None (never), or the name
        of a ``jax.checkpoint_policies`` policy to rematerialise with at every batch size,
        e.g. "dots_saveable" for models vmapped side by side (``diffmem.scan.remat_policy``).
    """

    has_memory = True  # called with return_trace=True, it returns a Trace (see diffmem.plots)

    def __init__(self, input_size: int, output_size: int | None, *,
                 state_grad_clip: float | None = None, remat: str | None = "auto",
                 **kwargs: Any):
        self.cell = NTMCell(input_size, output_size, **kwargs)
        self.input_size, self.output_size = input_size, output_size
        self.out_features = self.cell.out_features
        self.state_grad_clip = check_state_grad_clip(state_grad_clip)
        self.remat = check_remat(remat)

    def initial_state(self, batch_size: int) -> NTMState:
        return self.cell.initial_state(batch_size)

    def __call__(self, inputs: jax.Array, state: NTMState | None = None, *,
                 seq_lengths: jax.Array | None = None, return_trace: bool = False):
        inputs = check_input(inputs, 3, self.input_size, "inputs", self.cell.param_dtype)
        seq_lengths = check_lengths(seq_lengths, inputs.shape[0])
        if state is None:
            state = self.initial_state(inputs.shape[0])

        logits, state, trace = scan_steps(self.cell.step, state, inputs, return_trace,
                                           self.state_grad_clip, remat=self.remat,
                                           seq_lengths=seq_lengths)
        return (logits, state, trace) if return_trace else (logits, state)
