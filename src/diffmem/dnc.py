"""The Differentiable Neural Computer (Graves et al. 2016, Methods) as Flax NNX modules.

``DNCCell`` runs one time step, ``(state, x_t) -> (state, y_t)``, and follows flax.nnx's
recurrent-cell protocol (it runs in ``nnx.RNN`` and ``nnx.Bidirectional``); ``DNC`` runs a whole
sequence with ``jax.lax.scan``, ``(inputs (B, T, C_in), state=None, *, seq_lengths=None) ->
(logits (B, T, C_out), state)``, called exactly like ``diffmem.NTM``. The recurrent state is an
immutable ``DNCState`` tuple. docs/layers.md: the state, batch and length semantics.

The equations are pure functions: content lookup in ``diffmem.addressing``, the erase/add write
and the read in ``diffmem.memory``, usage, allocation, the link matrix and the read modes in
``diffmem.dnc_addressing``. Three refinements of Csordas & Schmidhuber (2019) are switches,
all off by default (the paper's DNC): content masking, de-allocation and link sharpness.

Shape letters: B batch, T time, N memory rows, W row width, R read heads (one write head),
H controller units.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from diffmem import addressing, memory
from diffmem import dnc_addressing as da
from diffmem.checks import check_input, check_lengths, check_sizes
from diffmem.controllers import CONTROLLERS
from diffmem.scan import (
    batched_state,
    check_chunk,
    check_remat,
    check_state_grad_clip,
    over_batch_axes,
    scan_steps,
)


class DNCState(NamedTuple):
    """Everything the DNC carries from one step to the next (all zeros at t = 0)."""

    controller: Any  # ((c, h), ...) per LSTM layer, () for feed-forward
    memory: jax.Array  # (B, N, W) M_{t-1}
    usage: jax.Array  # (B, N) u_{t-1}
    link: jax.Array | da.SparseLink  # (B, N, N) L_{t-1}, or K entries a row (link_topk)
    precedence: jax.Array  # (B, N) p_{t-1}
    read_weights: jax.Array  # (B, R, N) w^r_{t-1}
    write_weights: jax.Array  # (B, N) w^w_{t-1}
    reads: jax.Array  # (B, R, W) r_{t-1}


class DNCTrace(NamedTuple):
    """What the memory did at every step, for pictures and analysis (``return_trace=True``).

    Arrays are (B, T, ...) when returned by ``DNC``, (B, ...) from ``DNCCell.step``. The
    first five fields are those of ``diffmem.ntm.Trace`` (the write head on an axis of one),
    so the NTM's figures read a DNC trace too.
    """

    read_weights: jax.Array  # (B, T, R, N) w^r_t
    write_weights: jax.Array  # (B, T, 1, N) w^w_t
    erase: jax.Array  # (B, T, 1, W) e_t
    add: jax.Array  # (B, T, 1, W) the write vector v_t
    reads: jax.Array  # (B, T, R, W) r_t
    usage: jax.Array  # (B, T, N) u_t
    allocation_gate: jax.Array  # (B, T) g^a_t
    write_gate: jax.Array  # (B, T) g^w_t
    free_gates: jax.Array  # (B, T, R) f_t
    read_modes: jax.Array  # (B, T, R, 3) pi_t: backward, content, forward
    link: jax.Array | None  # (B, N, N) the final link matrix L_T (None from DNCCell.step)


class Interface(NamedTuple):
    """The interface vector xi_t split into its named parts, after their activations."""

    read_keys: jax.Array  # (B, R, W)
    read_strengths: jax.Array  # (B, R), >= 1
    write_key: jax.Array  # (B, W)
    write_strength: jax.Array  # (B,), >= 1
    erase: jax.Array  # (B, W), in [0, 1]
    write_vector: jax.Array  # (B, W)
    free_gates: jax.Array  # (B, R), in [0, 1]
    allocation_gate: jax.Array  # (B,), in [0, 1]
    write_gate: jax.Array  # (B,), in [0, 1]
    read_modes: jax.Array  # (B, R, 3), softmax: backward, content, forward
    read_masks: jax.Array | None  # (B, R, W) in [0, 1], with content masking
    write_mask: jax.Array | None  # (B, W) in [0, 1], with content masking
    link_sharpness: jax.Array | None  # (B, 2, R) >= 1 (forward, backward), with link sharpness


def oneplus(x: jax.Array) -> jax.Array:
    """oneplus(x) = 1 + log(1 + e^x), in [1, inf): the paper's activation for strengths."""
    return 1.0 + jax.nn.softplus(x)


def interface_sizes(read_heads: int, width: int, *, content_masking: bool = False,
                    link_sharpness: bool = False) -> dict[str, int]:
    """The size of each part of the interface vector, in order: R*W + 3W + 5R + 3 values for
    the paper's DNC, (R + 1) W more with content masking and 2R more with link sharpness."""
    R, W = read_heads, width
    sizes = dict(read_keys=R * W, read_strengths=R, write_key=W, write_strength=1, erase=W,
                 write_vector=W, free_gates=R, allocation_gate=1, write_gate=1, read_modes=3 * R)
    if content_masking:
        sizes.update(read_masks=R * W, write_mask=W)
    if link_sharpness:
        sizes.update(link_sharpness=2 * R)
    return sizes


def split_interface(raw: jax.Array, read_heads: int, width: int, *,
                    content_masking: bool = False, link_sharpness: bool = False) -> Interface:
    """Turn the raw interface vector (B, size) into named parts: the one place where each
    part gets its activation (SPEC section 3)."""
    R, W = read_heads, width
    sizes = interface_sizes(R, W, content_masking=content_masking,
                            link_sharpness=link_sharpness)
    parts = dict(zip(sizes, jnp.split(raw, np.cumsum(list(sizes.values()))[:-1].tolist(), -1)))
    B = raw.shape[:-1]
    masks = parts.get("read_masks")
    sharp = parts.get("link_sharpness")
    return Interface(
        read_keys=parts["read_keys"].reshape(B + (R, W)),
        read_strengths=oneplus(parts["read_strengths"]),
        write_key=parts["write_key"],
        write_strength=oneplus(parts["write_strength"][..., 0]),
        erase=jax.nn.sigmoid(parts["erase"]),
        write_vector=parts["write_vector"],
        free_gates=jax.nn.sigmoid(parts["free_gates"]),
        allocation_gate=jax.nn.sigmoid(parts["allocation_gate"][..., 0]),
        write_gate=jax.nn.sigmoid(parts["write_gate"][..., 0]),
        read_modes=jax.nn.softmax(parts["read_modes"].reshape(B + (R, 3)), axis=-1),
        read_masks=None if masks is None else jax.nn.sigmoid(masks.reshape(B + (R, W))),
        write_mask=None if masks is None else jax.nn.sigmoid(parts["write_mask"]),
        link_sharpness=None if sharp is None else oneplus(sharp.reshape(B + (2, R))),
    )


def _content(mem: jax.Array, key: jax.Array, strength: jax.Array,
             mask: jax.Array | None) -> jax.Array:
    """Content weighting C(M, k, beta); with a mask m, C(M * m, k * m, beta) (Csordas &
    Schmidhuber): only the masked-in part of each row is compared."""
    if mask is not None:
        mem, key = mem * mask[..., None, :], key * mask
    return addressing.content_weights(mem, key, strength)


class DNCCell(nnx.RNNCellBase):
    """One step of the DNC, a cell of flax.nnx's protocol (``cell(state, x_t) -> (state, y_t)``,
    ``initialize_carry``, ``num_feature_axes``), in the order of SPEC section 3:

    1. controller input: x_t and the R read vectors of step t-1; its output h_t (every LSTM
       layer's, concatenated) is mapped linearly to the interface vector
    2. usage (free gates, retention), then allocation
    3. write weighting from allocation and the write key's content lookup; erase/add write
    4. link matrix (with the previous precedence), then the new precedence
    5. every read head's forward, backward and content weightings, mixed by its read modes
    6. reads r_t, and y_t = Linear([h_t, r_t]) (logits), or [h_t, r_t] without ``output_size``

    Args:
      input_size: width of x_t (C_in).
      output_size: width of y_t (C_out); None: no output layer, y_t = [h_t, r_t], the
        controller output (every LSTM layer's) and the R read vectors concatenated,
        H * controller_layers + R * W wide for an LSTM controller, H + R * W for a feed-forward
        one (``out_features``).
      controller: "lstm" or "feedforward".
      controller_size: H, units per controller layer.
      controller_layers: number of controller layers.
      read_heads: R.
      memory_rows: N.  memory_width: W.
      clip: the raw interface vector is clipped to [-clip, clip] before its activations.
      content_masking: learn a mask per head for content lookups (Csordas & Schmidhuber).
      deallocation: scale memory rows by the retention vector before the write, so that freed
        rows are wiped and stop matching content lookups (Csordas & Schmidhuber).
      link_sharpness: sharpen the forward and backward weightings by learned exponents
        (Csordas & Schmidhuber).
      link_topk: None for the paper's dense (N, N) link matrix; K for its sparse link matrix
        (Methods, "Sparse link matrix"): K entries per row of L and of L^T, updated from the K
        largest entries of the write weighting and the precedence, O(N K) a step instead of
        O(N^2) (``diffmem.dnc_addressing.sparse_link``; K = N is the dense link).
      dtype: the dtype of the controller's and the linear layers' computation (None: that of
        their inputs and parameters, float32 by default), e.g. jnp.bfloat16. The addressing,
        the memory and the state are computed in ``param_dtype`` whatever it is (docs/layers.md).
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
        memory_rows: int = 128,
        memory_width: int = 20,
        clip: float = 20.0,
        content_masking: bool = False,
        deallocation: bool = False,
        link_sharpness: bool = False,
        link_topk: int | None = None,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        rngs: nnx.Rngs,
    ):
        check_sizes(
            input_size=input_size, controller_size=controller_size,
            controller_layers=controller_layers, read_heads=read_heads,
            memory_rows=memory_rows, memory_width=memory_width,
            **({} if output_size is None else {"output_size": output_size}),
        )
        if controller not in CONTROLLERS:
            raise ValueError(f"controller={controller!r} is not one of {sorted(CONTROLLERS)}")
        if not clip > 0:
            raise ValueError(f"clip={clip!r} must be a positive number (the paper uses 20)")
        if link_topk is not None and (isinstance(link_topk, bool)
                                      or not isinstance(link_topk, int)
                                      or not 1 <= link_topk <= memory_rows):
            raise ValueError(f"link_topk={link_topk!r} must be None (the dense link) or an "
                             f"integer from 1 to memory_rows={memory_rows} (the paper uses 8)")
        self.input_size, self.output_size = input_size, output_size
        self.read_heads, self.memory_rows, self.memory_width = read_heads, memory_rows, memory_width
        self.clip = clip
        self.content_masking, self.deallocation = content_masking, deallocation
        self.link_sharpness, self.link_topk = link_sharpness, link_topk
        self.dtype, self.param_dtype = dtype, param_dtype
        R, W = read_heads, memory_width
        dtypes = dict(dtype=dtype, param_dtype=param_dtype)

        self.controller = CONTROLLERS[controller](
            input_size + R * W, controller_size, controller_layers, rngs=rngs, **dtypes
        )
        # An LSTM controller hands every layer's output to the interface (the paper's h_t);
        # a feed-forward one its top layer's.
        self.hidden_size = controller_size * (controller_layers if controller == "lstm" else 1)
        self._all_layers = controller == "lstm"
        size = sum(interface_sizes(R, W, content_masking=content_masking,
                                   link_sharpness=link_sharpness).values())
        self.interface = nnx.Linear(self.hidden_size, size, rngs=rngs, **dtypes)
        self.out_features = self.hidden_size + R * W if output_size is None else output_size
        self.output = None if output_size is None else nnx.Linear(
            self.hidden_size + R * W, output_size, rngs=rngs, **dtypes)

    @property
    def num_feature_axes(self) -> int:
        """flax.nnx's cell protocol: x_t has one feature axis, C_in."""
        return 1

    def initialize_carry(self, input_shape: tuple[int, ...], rngs: Any = None) -> DNCState:
        """flax.nnx's cell protocol: ``initial_state`` for the batch axes ``input_shape[:-1]``
        of x_t (*B, C_in). ``rngs`` is unused: the initial state is all zeros."""
        del rngs
        return batched_state(self.initial_state, input_shape)

    def initial_state(self, batch_size: int) -> DNCState:
        """The state before the first step: an empty memory, no usage, links or weightings."""
        B, N, W, R = batch_size, self.memory_rows, self.memory_width, self.read_heads
        zeros = lambda *shape: jnp.zeros(shape, self.param_dtype)  # noqa: E731
        return DNCState(
            controller=self.controller.initial_state(B),
            memory=zeros(B, N, W), usage=zeros(B, N), link=self._empty_link(B),
            precedence=zeros(B, N), read_weights=zeros(B, R, N), write_weights=zeros(B, N),
            reads=zeros(B, R, W),
        )

    def _empty_link(self, batch_size: int) -> jax.Array | da.SparseLink:
        N = self.memory_rows
        if self.link_topk is None:
            return jnp.zeros((batch_size, N, N), self.param_dtype)
        return da.empty_sparse_link(batch_size, N, self.link_topk, self.param_dtype)

    def check_state(self, state: DNCState) -> None:
        """Raise ValueError if ``state`` is not of this cell's memory: the step would run on
        the state's memory (and its link's K) whatever its size (a state of another model)."""
        N, W, R = self.memory_rows, self.memory_width, self.read_heads
        got = (state.memory.shape[-2:], state.read_weights.shape[-2])
        if got != ((N, W), R):
            raise ValueError(
                f"the state holds a {got[0][0]} x {got[0][1]} memory and {got[1]} read heads; "
                f"this DNC has {N} x {W} and {R}: pass a state of this model (or None)"
            )
        sparse = isinstance(state.link, da.SparseLink)
        k = state.link.forward_index.shape[-1] if sparse else None
        if k != self.link_topk:
            held = f"a sparse link of K = {k}" if sparse else "a dense link"
            want = ("a dense link" if self.link_topk is None
                    else f"a sparse link of K = {self.link_topk}")
            raise ValueError(f"the state holds {held}; this DNC has {want}: pass a state of "
                             "this model (or None)")

    def _control(self, state: Any, x: jax.Array) -> tuple[jax.Array, Any, Interface]:
        """The controller's step from x_t and the previous reads, and its interface vector:
        ``(h_t, controller state, interface)``."""
        B = x.shape[0]
        R, W = self.read_heads, self.memory_width
        controller_in = jnp.concatenate([x, state.reads.reshape(B, R * W)], axis=-1)
        h, controller_state = self.controller(controller_in, state.controller)
        if self._all_layers:  # every LSTM layer's carry is (c, h)
            h = jnp.concatenate([layer_h for _, layer_h in controller_state], axis=-1)
        # The interface and addressing are computed in the memory's dtype.
        raw = self.interface(h).astype(state.memory.dtype)
        xi = split_interface(jnp.clip(raw, -self.clip, self.clip), R, W,
                             content_masking=self.content_masking,
                             link_sharpness=self.link_sharpness)
        return h, controller_state, xi

    def step(self, state: DNCState, x: jax.Array) -> tuple[DNCState, jax.Array, DNCTrace]:
        """One step: ``(state, x (B, C_in)) -> (state, y (B, C_out), trace of this step)``."""
        B = x.shape[0]
        R, W = self.read_heads, self.memory_width
        h, controller_state, xi = self._control(state, x)

        # Allocate and write.
        # The gradient flows through usage to the previous write weighting, as the equations
        # say; deepmind/dnc stops it there.
        usage = da.usage(state.usage, state.write_weights, xi.free_gates, state.read_weights)
        mem = state.memory
        if self.deallocation:
            # Freed rows are wiped before the write key looks them up, so that they look
            # empty to it (Csordas & Schmidhuber's code wipes them in the write itself, after
            # the lookup; the memory after the write is the same).
            mem = mem * da.retention(xi.free_gates, state.read_weights)[..., None]
        content_w = _content(mem, xi.write_key, xi.write_strength, xi.write_mask)
        w_w = da.write_weights(da.allocation(usage), content_w, xi.allocation_gate,
                               xi.write_gate)  # (B, N)
        mem = memory.write(mem, w_w, xi.erase, xi.write_vector)  # (B, N, W)

        # Temporal links, then read.
        if self.link_topk is None:
            link, forward, backward = da.link_and_directions(state.link, state.precedence, w_w,
                                                             state.read_weights)
        else:
            link = da.sparse_link(state.link, state.precedence, w_w)
            forward, backward = da.sparse_directional_weights(link, state.read_weights)
        prec = da.precedence(state.precedence, w_w)
        if xi.link_sharpness is not None:
            forward = da.sharpen_directional(forward, xi.link_sharpness[..., 0, :])
            backward = da.sharpen_directional(backward, xi.link_sharpness[..., 1, :])
        content_r = _content(mem[:, None], xi.read_keys, xi.read_strengths, xi.read_masks)
        w_r = da.read_weights(backward, content_r, forward, xi.read_modes)  # (B, R, N)
        reads = memory.read(mem[:, None], w_r)  # (B, R, W)

        y = self._output(jnp.concatenate([h, reads.reshape(B, R * W)], axis=-1))
        new_state = DNCState(controller_state, mem, usage, link, prec, w_r, w_w, reads)
        trace = DNCTrace(w_r, w_w[:, None], xi.erase[:, None], xi.write_vector[:, None], reads,
                         usage, xi.allocation_gate, xi.write_gate, xi.free_gates,
                         xi.read_modes, None)
        return new_state, y, trace

    def _output(self, hr: jax.Array) -> jax.Array:
        """y_t from [h_t, r_t]: the output layer's, or [h_t, r_t] itself without one."""
        if self.output is not None:
            return self.output(hr)
        return hr if self.dtype is None else hr.astype(self.dtype)

    def __call__(self, state: DNCState | None, x: jax.Array) -> tuple[DNCState, jax.Array]:
        """``(state, x_t (*B, C_in)) -> (state, y_t (*B, C_out))``, any batch axes (usually one);
        ``state=None`` starts afresh."""
        x = check_input(x, None, self.input_size, "x", self.param_dtype)
        if state is None:
            state = self.initialize_carry(x.shape)
        self.check_state(state)
        return over_batch_axes(lambda s, x_t: self.step(s, x_t)[:2], state, x)


class DNC(nnx.Module):
    """A DNC over whole sequences: ``DNCCell`` scanned over time with ``jax.lax.scan``.

    ``logits, state = model(inputs)`` with inputs (B, T, C_in) gives logits (B, T, C_out) and
    the final ``DNCState``; called like ``diffmem.NTM``: every call starts afresh from an empty
    memory unless ``state`` is passed (a returned state continues the sequences), and
    ``seq_lengths`` (B,) stops each sequence's state after its own length, its outputs after it
    zeros (docs/layers.md). ``return_trace=True`` also returns a ``DNCTrace`` of every step
    (weightings, usage, gates, read modes) and the final link matrix.

    Takes the same arguments as ``DNCCell`` (its ``model.cell``), ``state_grad_clip`` and
    ``remat`` (see ``diffmem.ntm.NTM``), and ``remat_chunk``: "auto" (the default) has the
    backward pass keep the state only every ~sqrt(T) steps, recomputing those between, where
    the state is large (a dense link at N = 256 and batch 16: 4 MiB a step); an integer always
    chunks by that many steps, None never (``diffmem.scan.chunked_scan``).
    """

    has_memory = True  # called with return_trace=True, it returns a trace (see diffmem.plots)

    def __init__(self, input_size: int, output_size: int | None, *,
                 state_grad_clip: float | None = None, remat: str | None = "auto",
                 remat_chunk: int | str | None = "auto", **kwargs: Any):
        self.cell = DNCCell(input_size, output_size, **kwargs)
        self.input_size, self.output_size = input_size, output_size
        self.out_features = self.cell.out_features
        self.state_grad_clip = check_state_grad_clip(state_grad_clip)
        self.remat = check_remat(remat)
        self.remat_chunk = check_chunk(remat_chunk)

    def initial_state(self, batch_size: int) -> DNCState:
        return self.cell.initial_state(batch_size)

    def __call__(self, inputs: jax.Array, state: DNCState | None = None, *,
                 seq_lengths: jax.Array | None = None, return_trace: bool = False):
        inputs = check_input(inputs, 3, self.input_size, "inputs", self.cell.param_dtype)
        seq_lengths = check_lengths(seq_lengths, inputs.shape[0])
        if state is None:
            state = self.initial_state(inputs.shape[0])
        self.cell.check_state(state)

        logits, state, trace = scan_steps(self.cell.step, state, inputs, return_trace,
                                           self.state_grad_clip, remat=self.remat,
                                           seq_lengths=seq_lengths, chunk=self.remat_chunk)
        if not return_trace:
            return logits, state
        link = state.link
        if isinstance(link, da.SparseLink):
            link = da.dense_link(link)
        return logits, state, trace._replace(link=link)
