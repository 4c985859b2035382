"""Sparse Access Memory (SAM; Rae et al. 2016) as Flax NNX modules.

``SAMCell`` runs one time step, ``(state, x_t) -> (state, y_t)``, and follows flax.nnx's
recurrent-cell protocol; ``SAM`` runs a whole sequence, ``(inputs (B, T, C_in), state=None, *,
seq_lengths=None) -> (logits (B, T, C_out), state)``, called exactly like ``diffmem.NTM`` and
``diffmem.DNC``. The memory's equations are in ``diffmem.sparse_memory``.

A step touches few rows: each of the R read heads reads the K rows most similar to its key,
and the one write goes to the R K rows read at the step before and to the least recently used
row, which it erases first. ``SAM``'s scan has its own backward pass (``sparse_scan``): it
keeps, for every step, the rows that step read and the indices it touched, and carries the
memory's gradient back through the steps, adding into it and reading from it a few rows at a
time. Neither pass stores the memory once per step, so a step's time and the memory a
sequence needs grow with N W once (the memory and its gradient) and with T R K W, not T N W.

Shape letters: B batch, T time, N memory rows, W row width, R read heads, K rows per read,
J = R K + 1 rows a write touches, H controller units.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from diffmem import sparse_memory as sm
from diffmem.checks import check_input, check_lengths, check_sizes
from diffmem.controllers import CONTROLLERS
from diffmem.scan import (
    batched_state,
    check_state_grad_clip,
    over_batch_axes,
    scan_steps,
    where_live,
)


class SAMState(NamedTuple):
    """Everything SAM carries from one step to the next."""

    controller: Any  # ((c, h), ...) per LSTM layer, () for feed-forward
    memory: jax.Array  # (B, N, W) M_{t-1}, zeros at t = 0
    last_access: jax.Array  # (B, N) int32, the step each row was last accessed; -1: never
    steps: jax.Array  # (B,) int32, steps taken
    read_index: jax.Array  # (B, R, K) int32, the rows read at t - 1
    read_weights: jax.Array  # (B, R, K) w^R_{t-1} over those rows (zeros at t = 0)
    reads: jax.Array  # (B, R, W) r_{t-1}


class SAMTrace(NamedTuple):
    """What the memory did at every step (``return_trace=True``). The weightings are spread
    over all N rows, in the layout of ``diffmem.ntm.Trace``, so that ``diffmem.plots`` draws
    them as it draws the NTM's. Arrays are (B, T, ...)."""

    read_weights: jax.Array  # (B, T, R, N)
    write_weights: jax.Array  # (B, T, 1, N)
    add: jax.Array  # (B, T, 1, W) the add vector a_t
    reads: jax.Array  # (B, T, R, W)
    write_gate: jax.Array  # (B, T) alpha_t
    interpolation_gate: jax.Array  # (B, T) gamma_t: previous read rows (1) or the LRU row (0)
    least_used: jax.Array  # (B, T) int32, the row erased and offered to the write


class Interface(NamedTuple):
    """The controller's interface vector split into its named parts, after their activations."""

    read_keys: jax.Array  # (B, R, W)
    read_strengths: jax.Array  # (B, R), >= 1
    add: jax.Array  # (B, W)
    write_gate: jax.Array  # (B,), in [0, 1]
    interpolation_gate: jax.Array  # (B,), in [0, 1]


def interface_sizes(read_heads: int, width: int) -> dict[str, int]:
    """The size of each part of the interface vector, in order: R W + R + W + 2 values."""
    R, W = read_heads, width
    return dict(read_keys=R * W, read_strengths=R, add=W, write_gate=1, interpolation_gate=1)


def split_interface(raw: jax.Array, read_heads: int, width: int) -> Interface:
    """Turn the raw interface vector (B, size) into named parts with their activations."""
    R, W = read_heads, width
    sizes = interface_sizes(R, W)
    parts = dict(zip(sizes, jnp.split(raw, np.cumsum(list(sizes.values()))[:-1].tolist(), -1)))
    B = raw.shape[:-1]
    return Interface(
        read_keys=parts["read_keys"].reshape(B + (R, W)),
        read_strengths=1.0 + jax.nn.softplus(parts["read_strengths"]),
        add=parts["add"],
        write_gate=jax.nn.sigmoid(parts["write_gate"][..., 0]),
        interpolation_gate=jax.nn.sigmoid(parts["interpolation_gate"][..., 0]),
    )


class _Small(NamedTuple):
    """The differentiable part of the state, which the backward pass keeps for every step."""

    controller: Any
    read_weights: jax.Array
    reads: jax.Array


class _Control(NamedTuple):
    """What the controller hands the memory at one step (``SAMCell.control``)."""

    controller: Any  # its new state
    h: jax.Array  # (B, H) its output
    keys: jax.Array  # (B, R, W)
    strengths: jax.Array  # (B, R)
    write_weights: jax.Array  # (B, J) over ``touched_rows``
    add: jax.Array  # (B, W)
    write_gate: jax.Array  # (B,) alpha
    interpolation_gate: jax.Array  # (B,) gamma


class SAMCell(nnx.RNNCellBase):
    """One step of SAM, a cell of flax.nnx's protocol (``cell(state, x_t) -> (state, y_t)``,
    ``initialize_carry``, ``num_feature_axes``):

    1. controller input: x_t and the R read vectors of step t - 1; its output h_t (every LSTM
       layer's, concatenated) is mapped linearly to the interface (``Interface``)
    2. write: the least recently used row is erased, then alpha (gamma w^R_{t-1} + (1 - gamma)
       I^U) a^T is added to the rows read at t - 1 and that row
    3. read: each head's K rows most similar to its key, weighted by a softmax over them
    4. y_t = Linear([h_t, r_t]) (logits), or [h_t, r_t] without ``output_size``
    5. every row read or written with a weight above ``sparse_memory.ACCESS_THRESHOLD`` is
       stamped with this step, for the next step's least recently used row

    Args:
      input_size: width of x_t (C_in).
      output_size: width of y_t (C_out); None: y_t = [h_t, r_t] (``out_features`` wide).
      controller: "lstm" or "feedforward".
      controller_size: H.  controller_layers: number of controller layers.
      read_heads: R.  memory_rows: N.  memory_width: W.
      read_topk: K, the rows each read head reads (the paper uses 4 to 8).
      clip: the raw interface vector is clipped to [-clip, clip] before its activations.
      dtype: the dtype of the controller's and the linear layers' computation (None: that of
        their inputs and parameters); the memory and the state are in ``param_dtype``.
      param_dtype: the dtype of the parameters and of the state (float32).
      rngs: nnx.Rngs for parameter initialisation.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int | None,
        *,
        controller: str = "lstm",
        controller_size: int = 100,
        controller_layers: int = 1,
        read_heads: int = 1,
        memory_rows: int = 128,
        memory_width: int = 20,
        read_topk: int = 4,
        clip: float = 20.0,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        check_sizes(
            input_size=input_size, controller_size=controller_size,
            controller_layers=controller_layers, read_heads=read_heads,
            memory_rows=memory_rows, memory_width=memory_width, read_topk=read_topk,
            **({} if output_size is None else {"output_size": output_size}),
        )
        if read_topk > memory_rows:
            raise ValueError(f"read_topk={read_topk!r} must be at most memory_rows="
                             f"{memory_rows}: a read takes K distinct rows")
        if controller not in CONTROLLERS:
            raise ValueError(f"controller={controller!r} is not one of {sorted(CONTROLLERS)}")
        if not clip > 0:
            raise ValueError(f"clip={clip!r} must be a positive number (20 is usual)")
        self.input_size, self.output_size = input_size, output_size
        self.read_heads, self.memory_rows, self.memory_width = read_heads, memory_rows, memory_width
        self.read_topk, self.clip = read_topk, clip
        self.dtype, self.param_dtype = dtype, param_dtype
        R, W = read_heads, memory_width
        dtypes = dict(dtype=dtype, param_dtype=param_dtype)
        self.controller = CONTROLLERS[controller](
            input_size + R * W, controller_size, controller_layers, rngs=rngs, **dtypes)
        self.hidden_size = controller_size * (controller_layers if controller == "lstm" else 1)
        self._all_layers = controller == "lstm"
        self.interface = nnx.Linear(self.hidden_size, sum(interface_sizes(R, W).values()),
                                    rngs=rngs, **dtypes)
        self.out_features = self.hidden_size + R * W if output_size is None else output_size
        self.output = None if output_size is None else nnx.Linear(
            self.hidden_size + R * W, output_size, rngs=rngs, **dtypes)

    @property
    def num_feature_axes(self) -> int:
        """flax.nnx's cell protocol: x_t has one feature axis, C_in."""
        return 1

    def initialize_carry(self, input_shape: tuple[int, ...], rngs: Any = None) -> SAMState:
        """flax.nnx's cell protocol: ``initial_state`` for the batch axes ``input_shape[:-1]``
        of x_t (*B, C_in). ``rngs`` is unused."""
        del rngs
        return batched_state(self.initial_state, input_shape)

    def initial_state(self, batch_size: int) -> SAMState:
        """An empty memory that no step has accessed, and no reads."""
        B, N, W, R, K = (batch_size, self.memory_rows, self.memory_width, self.read_heads,
                         self.read_topk)
        zeros = lambda *shape: jnp.zeros(shape, self.param_dtype)  # noqa: E731
        return SAMState(
            controller=self.controller.initial_state(B), memory=zeros(B, N, W),
            last_access=jnp.full((B, N), -1, jnp.int32), steps=jnp.zeros((B,), jnp.int32),
            read_index=jnp.zeros((B, R, K), jnp.int32), read_weights=zeros(B, R, K),
            reads=zeros(B, R, W))

    def check_state(self, state: SAMState) -> None:
        """Raise ValueError if ``state`` is not of this cell's memory."""
        want = ((self.memory_rows, self.memory_width), (self.read_heads, self.read_topk))
        got = (state.memory.shape[-2:], state.read_index.shape[-2:])
        if got != want:
            raise ValueError(
                f"the state holds a {got[0][0]} x {got[0][1]} memory and reads of "
                f"{got[1][0]} x {got[1][1]} (heads x rows); this SAM has {want[0][0]} x "
                f"{want[0][1]} and {want[1][0]} x {want[1][1]}: pass a state of this model "
                "(or None)")

    # The step in three parts: ``control`` and ``finish`` are the differentiable, small ones,
    # which ``sparse_scan`` differentiates again in its backward pass; between them the memory
    # is written and searched.

    def control(self, small: _Small, x: jax.Array) -> _Control:
        """The controller's step and the write weighting over the rows ``touched_rows`` names."""
        B = x.shape[0]
        R, W = self.read_heads, self.memory_width
        h, controller = self.controller(
            jnp.concatenate([x, small.reads.reshape(B, R * W).astype(x.dtype)], axis=-1),
            small.controller)
        if self._all_layers:  # every LSTM layer's carry is (c, h)
            h = jnp.concatenate([layer_h for _, layer_h in controller], axis=-1)
        raw = self.interface(h).astype(small.reads.dtype)
        xi = split_interface(jnp.clip(raw, -self.clip, self.clip), R, W)
        weights = sm.write_weights(small.read_weights, xi.write_gate, xi.interpolation_gate)
        return _Control(controller, h, xi.read_keys, xi.read_strengths, weights, xi.add,
                        xi.write_gate, xi.interpolation_gate)

    def finish(self, c: _Control, rows: jax.Array) -> tuple[_Small, jax.Array]:
        """The read of the gathered rows (B, R, K, W), and y_t: ``(small state, y_t)``."""
        B = rows.shape[0]
        weights, reads = sm.read_rows(rows, c.keys, c.strengths)
        hr = jnp.concatenate([c.h, reads.reshape(B, -1).astype(c.h.dtype)], axis=-1)
        if self.output is not None:
            y = self.output(hr)
        else:
            y = hr if self.dtype is None else hr.astype(self.dtype)
        return _Small(c.controller, weights, reads), y

    def step(self, state: SAMState, x: jax.Array) -> tuple[SAMState, jax.Array, SAMTrace]:
        """One step: ``(state, x (B, C_in)) -> (state, y (B, C_out), trace of this step)``."""
        small = _Small(state.controller, state.read_weights, state.reads)
        c = self.control(small, x)
        memory, index, lru, touched = _memory_step(state, c, self.read_topk)
        small, y = self.finish(c, sm.gather_rows(memory, index))
        new = _advance(state, small, memory, c, index, touched)
        dense = lambda rows, w: sm.scatter_add_rows(  # noqa: E731
            jnp.zeros(memory.shape[:2] + (1,), w.dtype), rows, w[..., None])[..., 0]
        trace = SAMTrace(
            read_weights=jax.vmap(dense, in_axes=(1, 1), out_axes=1)(index, small.read_weights),
            write_weights=dense(touched, c.write_weights)[:, None], add=c.add[:, None],
            reads=small.reads, write_gate=c.write_gate,
            interpolation_gate=c.interpolation_gate, least_used=lru)
        return new, y, trace

    def __call__(self, state: SAMState | None, x: jax.Array) -> tuple[SAMState, jax.Array]:
        """``(state, x_t (*B, C_in)) -> (state, y_t (*B, C_out))``, any batch axes;
        ``state=None`` starts afresh."""
        x = check_input(x, None, self.input_size, "x", self.param_dtype)
        if state is None:
            state = self.initialize_carry(x.shape)
        self.check_state(state)
        return over_batch_axes(lambda s, x_t: self.step(s, x_t)[:2], state, x)


def _memory_step(state: SAMState, c: _Control, k: int, live: jax.Array | None = None):
    """Write, then find the rows each head reads: ``(M_t, read index (B, R, K), the least
    used row (B,), the rows written (B, J))``."""
    lru = sm.least_recently_used(state.last_access)
    touched = sm.touched_rows(state.read_index, lru)
    memory = sm.sparse_write(state.memory, touched, c.write_weights, c.add, lru, live)
    return memory, sm.top_rows(memory, c.keys, k), lru, touched


def _advance(state: SAMState, small: _Small, memory: jax.Array, c: _Control,
             index: jax.Array, touched: jax.Array, live: jax.Array | None = None) -> SAMState:
    """The state after a step, its rows stamped as accessed; where ``live`` (B,) does not
    hold, the state before it but for ``memory`` (which the write left as it was). The
    memory and the access stamps are not passed through a ``where``, which would cost a
    pass over them."""
    step = state.steps if live is None else jnp.where(live, state.steps, -1)
    last = sm.accessed(state.last_access, step, touched,
                       jax.lax.stop_gradient(c.write_weights), index,
                       jax.lax.stop_gradient(small.read_weights))
    new = SAMState(small.controller, None, None, state.steps + 1, index, small.read_weights,
                   small.reads)
    if live is not None:
        new = where_live(live, new, state._replace(memory=None, last_access=None))
    return new._replace(memory=memory, last_access=last)


# ----------------------------------------------------------------------------------------
# The scan over a sequence, with a backward pass that stores a few rows a step


def _float0(a: jax.Array) -> np.ndarray:
    return np.zeros(np.shape(a), jax.dtypes.float0)


def sparse_scan(cell: SAMCell, state: SAMState, inputs: jax.Array,
                seq_lengths: jax.Array | None = None, state_grad_clip: float | None = None
                ) -> tuple[jax.Array, SAMState]:
    """``cell.step`` over ``inputs`` (B, T, C_in) from ``state``: ``(outputs (B, T, C_out),
    final state)``, the same values as ``scan_steps`` gives, with a backward pass of its own.

    The forward pass keeps, per step, the small state before the step (controller, read
    weights and read vectors), the K rows each head read and the indices of the rows read
    and written. The backward pass goes back through the steps carrying the memory's gradient
    (B, N, W): it recomputes the controller's part of each step, adds the read rows'
    gradient into the memory's at their rows, takes the gradient of the rows written from it,
    and zeroes the erased row's, in place. Nothing else of the memory is needed: the search
    for the rows read is not differentiated, and the gradient of a read with respect to the
    rows is computed from the rows kept.

    With ``seq_lengths`` (B,), sequence b's state stops changing after its own length and
    its outputs after it are zeros. With ``state_grad_clip``, the gradient reaching the
    state at every step is clipped elementwise to that bound, as ``scan_steps`` clips it; the
    memory's is clipped where a step changes it, and the final memory's once, so that the two
    agree exactly when the final memory's gradient is within the bound (it is zero when a loss
    reads only the outputs).
    """
    graphdef, params = nnx.split(cell)
    B, T = inputs.shape[:2]
    lengths = jnp.full((B,), T, jnp.int32) if seq_lengths is None else seq_lengths
    lives = jnp.arange(T)[:, None] < lengths[None, :]  # (T, B)
    passes = _Passes(graphdef, cell.read_topk, state_grad_clip)

    @jax.custom_vjp
    def run(p, state, xs, lives):
        final, (ys, _) = passes.forward(p, state, xs, lives, keep=False)
        return ys, final

    def run_fwd(p, state, xs, lives):
        final, (ys, saved) = passes.forward(p, state, xs, lives, keep=True)
        return (ys, final), (p, saved, xs, lives)

    run.defvjp(run_fwd, passes.backward)
    ys, final = run(params, state, jnp.swapaxes(inputs, 0, 1), lives)
    return jnp.swapaxes(ys, 0, 1), final


class _Passes:
    """``sparse_scan``'s forward and backward passes for a cell of graph ``graphdef``, its
    parameters an argument, so that the backward pass can differentiate the step again."""

    def __init__(self, graphdef: nnx.GraphDef, k: int, clip: float | None):
        self.graphdef, self.k, self.clip = graphdef, k, clip

    def control(self, p: nnx.State, small: _Small, x: jax.Array) -> _Control:
        return nnx.merge(self.graphdef, p).control(small, x)

    def finish(self, p: nnx.State, c: _Control, rows: jax.Array) -> tuple[_Small, jax.Array]:
        return nnx.merge(self.graphdef, p).finish(c, rows)

    def forward(self, p, state: SAMState, xs: jax.Array, lives: jax.Array, *, keep: bool):
        """The scan: ``(final state, (ys (T, B, C_out), what the backward pass needs))``."""
        def body(state, step_in):
            x, live = step_in
            small = _Small(state.controller, state.read_weights, state.reads)
            c = self.control(p, small, x)
            memory, index, lru, touched = _memory_step(state, c, self.k, live)
            rows = sm.gather_rows(memory, index)
            new_small, y = self.finish(p, c, rows)
            new = _advance(state, new_small, memory, c, index, touched, live)
            y = where_live(live, y, jnp.zeros_like(y))
            return new, (y, (small, rows, index, lru, touched) if keep else None)

        return jax.lax.scan(body, state, (xs, lives))

    def backward(self, residuals, cotangents):
        """The cotangents of ``(p, state, xs, lives)`` from those of ``(ys, final state)``."""
        p, saved, xs, lives = residuals
        d_ys, d_final = cotangents
        d_small = _Small(d_final.controller, d_final.read_weights, d_final.reads)
        d_memory = d_final.memory
        if self.clip is not None:
            d_memory = jnp.clip(d_memory, -self.clip, self.clip)
        zero_p = jax.tree.map(jnp.zeros_like, p)
        (d_memory, d_small, d_p), d_xs = jax.lax.scan(
            lambda carry, per_step: self._back(p, carry, per_step),
            (d_memory, d_small, zero_p), (*saved, xs, lives, d_ys), reverse=True)
        d_state = SAMState(d_small.controller, d_memory, _float0(d_final.last_access),
                           _float0(d_final.steps), _float0(d_final.read_index),
                           d_small.read_weights, d_small.reads)
        return d_p, d_state, d_xs, _float0(lives)

    def _back(self, p, carry, per_step):
        """One step back: the controller's parts differentiated again from the state before
        the step and the rows read; the memory's gradient updated a few rows at a time."""
        d_memory, d_small, d_p = carry
        small, rows, index, lru, touched, x, live, d_y = per_step
        c, control_vjp = jax.vjp(self.control, p, small, x)
        _, finish_vjp = jax.vjp(self.finish, p, c, rows)

        def only(g, where):
            return where_live(where, g, jax.tree.map(jnp.zeros_like, g))

        dp_finish, d_c, d_rows = finish_vjp((only(d_small, live), only(d_y, live)))
        # The rows were read from M_t = erase(M_{t-1}) + the rows written.
        d_memory = sm.scatter_add_rows(d_memory, index, d_rows)
        d_written = sm.gather_rows(d_memory, touched) * live[:, None, None]  # (B, J, W)
        # The erased row (touched's last) passes no gradient back: its own gradient, from the
        # rows just gathered, is subtracted. Taking it from those rows orders the gather before
        # the update, which lets XLA update in place rather than copy the whole gradient.
        d_memory = sm.scatter_add_rows(d_memory, lru[:, None], -d_written[:, -1:])
        if self.clip is not None:  # the rows read changed; the erased one is zero
            clipped = jnp.clip(sm.gather_rows(d_memory, index), -self.clip, self.clip)
            d_memory = jax.vmap(lambda m, i, v: m.at[i].set(v))(d_memory, index, clipped)
        d_c = d_c._replace(
            write_weights=d_c.write_weights + jnp.einsum("bjw,bw->bj", d_written, c.add),
            add=d_c.add + jnp.einsum("bjw,bj->bw", d_written, c.write_weights))
        dp_control, d_small_prev, d_x = control_vjp(d_c)
        d_small = jax.tree.map(jnp.add, d_small_prev, only(d_small, ~live))
        if self.clip is not None:
            d_small = jax.tree.map(lambda g: jnp.clip(g, -self.clip, self.clip), d_small)
        d_p = jax.tree.map(lambda a, b, c_: a + b + c_, d_p, dp_finish, dp_control)
        return (d_memory, d_small, d_p), d_x


class SAM(nnx.Module):
    """SAM over whole sequences: ``SAMCell`` scanned over time by ``sparse_scan``.

    ``logits, state = model(inputs)`` with inputs (B, T, C_in) gives logits (B, T, C_out) and
    the final ``SAMState``; called like ``diffmem.NTM``: every call starts afresh from an empty
    memory unless ``state`` is passed, and ``seq_lengths`` (B,) stops each sequence after its
    own length (docs/layers.md). ``return_trace=True`` also returns a ``SAMTrace`` of every
    step (its weightings over all N rows: for pictures of small memories); that call runs
    ``diffmem.scan.scan_steps``, whose backward pass JAX derives (twice as slow at 2^20 rows,
    docs/sam.md).

    Takes the same arguments as ``SAMCell`` (its ``model.cell``) and ``state_grad_clip`` (see
    ``diffmem.ntm.NTM``).
    """

    has_memory = True

    def __init__(self, input_size: int, output_size: int | None, *,
                 state_grad_clip: float | None = None, **kwargs: Any):
        self.cell = SAMCell(input_size, output_size, **kwargs)
        self.input_size, self.output_size = input_size, output_size
        self.out_features = self.cell.out_features
        self.state_grad_clip = check_state_grad_clip(state_grad_clip)

    def initial_state(self, batch_size: int) -> SAMState:
        return self.cell.initial_state(batch_size)

    def __call__(self, inputs: jax.Array, state: SAMState | None = None, *,
                 seq_lengths: jax.Array | None = None, return_trace: bool = False):
        inputs = check_input(inputs, 3, self.input_size, "inputs", self.cell.param_dtype)
        seq_lengths = check_lengths(seq_lengths, inputs.shape[0])
        if state is None:
            state = self.initial_state(inputs.shape[0])
        self.cell.check_state(state)
        if return_trace:
            return scan_steps(self.cell.step, state, inputs, True, self.state_grad_clip,
                              remat=None, seq_lengths=seq_lengths)
        return sparse_scan(self.cell, state, inputs, seq_lengths, self.state_grad_clip)
