"""The sparse Differentiable Neural Computer (SDNC; Rae et al. 2016) as Flax NNX modules.

The DNC (``diffmem.dnc``) with every weighting kept on a few rows: ``SDNCCell`` runs one step,
``SDNC`` a whole sequence, called exactly like ``diffmem.DNC``; their parameters are the
DNC's, so a DNC's trained parameters run in an SDNC of the same sizes and the reverse.

A step touches few rows of an N-row memory:

- usage changes at the rows written and read at the step before;
- allocation ranks the K least used rows (found by ``lax.top_k``, not differentiated) rather
  than all N, on usage not lifted by the DNC's 1e-6 (``sparse_allocation``), and the write
  key looks up the K rows most similar to it: the write goes to those 2 K rows;
- the precedence keeps its K_L largest entries, and the temporal link matrix K_L entries per
  row of L and per row of L^T (the paper's sparse link, Methods of Graves et al. 2016);
- each read head mixes its content weighting over the K rows most similar to its key with
  the K_L largest entries of its forward and backward weightings.

The link's decay, L[i, j] <- (1 - w_i - w_j) L[i, j], touches every entry whose row or column
is written. Rows written are rebuilt; the decay of the other rows' entries, by (1 - w_j) for
their written columns j, is deferred: each row n keeps the running sum of log(1 - w_n) over
all steps (``keep_log``), each entry the sum at the time it was stored (its stamp), and an
entry is read as ``value * exp(keep_log[column] - stamp)``. So neither pass touches all N K_L
entries, and JAX's differentiation of the scan keeps a few rows a step, not the memory.

With K = K_L = N and ``usage_lift=1e-6`` nothing is dropped and the SDNC computes the DNC's
values and gradients (tests/test_sdnc.py, float64). Shape letters: B batch, T time, N memory
rows, W row width, R read heads, K rows per content lookup and allocation (``read_topk``),
K_L link entries a row (``link_topk``), J = 2 K rows written, S = K + 2 K_L rows a head
reads.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from diffmem import dnc_addressing as da
from diffmem import sparse_memory as sm
from diffmem.checks import check_input, check_lengths
from diffmem.dnc import DNCCell, DNCTrace, _content
from diffmem.scan import check_state_grad_clip, over_batch_axes, scan_steps

# 1 - w is floored at this before its logarithm: a row written with weight 1 (which float32
# rounds to) would otherwise make its links' deferred decay exp(-inf - -inf). The links into
# it are then kept at 1e-30 of their value rather than 0.
_TINY = 1e-30
# K_L when a configuration leaves ``model.link_topk`` unset: the DNC paper's sparse link.
LINK_TOPK = 8


class LazyLink(NamedTuple):
    """The temporal link matrix with K_L entries per row of L and per row of L^T, its decay
    deferred (module docstring). ``forward_index[b, i, k]`` is a column j of row i of L,
    its entry L[i, j] = ``forward_value * exp(keep_log[b, j] - forward_stamp)`` at
    ``[b, i, k]``; ``backward_*`` hold the rows of L^T the same way (row j, entries L[i, j]
    at columns i). Indices within a row are distinct; an entry not held is 0."""

    forward_index: jax.Array  # (B, N, K_L) int32
    forward_value: jax.Array  # (B, N, K_L)
    forward_stamp: jax.Array  # (B, N, K_L)
    backward_index: jax.Array  # (B, N, K_L) int32
    backward_value: jax.Array  # (B, N, K_L)
    backward_stamp: jax.Array  # (B, N, K_L)


class SDNCState(NamedTuple):
    """Everything the SDNC carries from one step to the next. Weightings are held as the
    rows they cover and their weights there; a row may be listed twice, its weights adding
    up."""

    controller: Any  # ((c, h), ...) per LSTM layer
    memory: jax.Array  # (B, N, W) M_{t-1}
    usage: jax.Array  # (B, N) u_{t-1}
    keep_log: jax.Array  # (B, N) sum over steps of log(1 - w^w[n])
    link: LazyLink  # L_{t-1}
    precedence_index: jax.Array  # (B, K_L) int32, distinct
    precedence: jax.Array  # (B, K_L) p_{t-1} there
    read_index: jax.Array  # (B, R, S) int32: backward, content, forward rows
    read_weights: jax.Array  # (B, R, S) w^r_{t-1} there
    write_index: jax.Array  # (B, J) int32: allocated rows, then looked-up rows
    write_weights: jax.Array  # (B, J) w^w_{t-1} there
    reads: jax.Array  # (B, R, W) r_{t-1}


# ----------------------------------------------------------------------------------------
# Sparse weightings: rows with repeats


def _take(values: jax.Array, index: jax.Array) -> jax.Array:
    """values[b, index[b, ...]]: (B, N), (B, ...) -> (B, ...)."""
    B = values.shape[0]
    return jnp.take_along_axis(values, index.reshape(B, -1), axis=1).reshape(index.shape)


def totals(index: jax.Array, weights: jax.Array, at: jax.Array) -> jax.Array:
    """The weight that ``index`` (B, A) with ``weights`` (B, A) puts on each row of ``at``
    (B, ...): the sum over the entries of that row."""
    B = index.shape[0]
    same = (at.reshape(B, -1)[:, :, None] == index[:, None, :]).astype(weights.dtype)
    return jnp.einsum("bca,ba->bc", same, weights).reshape(at.shape)


def first_listed(index: jax.Array) -> jax.Array:
    """(..., A) bool: True at the first entry of each distinct row of ``index`` (..., A)."""
    a = index.shape[-1]
    earlier = jnp.arange(a)[None, :] < jnp.arange(a)[:, None]
    return ~jnp.any((index[..., :, None] == index[..., None, :]) & earlier, axis=-1)


def set_rows(values: jax.Array, index: jax.Array, rows: jax.Array) -> jax.Array:
    """``values`` (B, N, ...) with row ``index[b, a]`` (B, A) set to ``rows[b, a]``. A row
    listed twice must be given the same value twice: it is set from its first entry, so that
    each row gets its gradient once.

    Floating-point rows are set by adding their change to the old rows, a scatter-add whose
    derivative is a scatter-add too. A scatter that sets has a derivative that masks the whole
    array, and JAX's differentiation of the scan would keep that mask at every step (the
    memory's size, 4 GB over 41 steps at 2^20 rows)."""
    first = first_listed(index)
    if not jnp.issubdtype(values.dtype, jnp.floating):
        unique = jnp.where(first, index, values.shape[1])
        return jax.vmap(lambda v, i, r: v.at[i].set(r, mode="drop"))(values, unique, rows)
    change = rows - sm.gather_rows(values, index)
    change = jnp.where(first.reshape(first.shape + (1,) * (change.ndim - 2)), change, 0.0)
    return sm.scatter_add_rows(values, index, change)


def _keep_largest(index: jax.Array, values: jax.Array, valid: jax.Array, k: int
                  ) -> tuple[jax.Array, jax.Array]:
    """The K largest of candidate entries ``index``/``values`` (..., C) where ``valid``:
    ``(index (..., K), values (..., K))``. The candidates must hold at least K valid ones,
    whose values are 0 or more."""
    top, chosen = jax.lax.top_k(jnp.where(valid, values, -1.0), k)
    return jnp.take_along_axis(index, chosen, axis=-1), top


def _merged(index: jax.Array, values: jax.Array, k: int, rows: int | None = None
            ) -> tuple[jax.Array, jax.Array]:
    """Candidate entries (B, ..., C) with repeats summed, then their K largest. Repeats are
    found by comparing every pair of candidates, or, where that is more work than a pass over
    the ``rows`` of the memory, through a buffer of one number a row."""
    c = index.shape[-1]
    if rows is None or rows > c * c:
        same = (index[..., :, None] == index[..., None, :]).astype(values.dtype)
        summed = jnp.einsum("...ca,...a->...c", same, values)
        first = first_listed(index)
    else:
        flat = index.reshape(-1, c)
        scatter = jax.vmap(lambda z, i, v: z.at[i].add(v))
        summed = scatter(jnp.zeros((flat.shape[0], rows), values.dtype), flat,
                         values.reshape(-1, c))
        summed = jnp.take_along_axis(summed, flat, axis=-1).reshape(index.shape)
        position = jnp.broadcast_to(jnp.arange(c, dtype=jnp.int32), flat.shape)
        earliest = jax.vmap(lambda z, i, p: z.at[i].min(p))(
            jnp.full((flat.shape[0], rows), c, jnp.int32), flat, position)
        first = (jnp.take_along_axis(earliest, flat, axis=-1) == position).reshape(index.shape)
    index, top = _keep_largest(index, summed, first, k)
    return index, jnp.maximum(top, 0.0)


# ----------------------------------------------------------------------------------------
# The DNC's equations on sparse weightings


def sparse_usage(usage: jax.Array, write_index: jax.Array, write_weights: jax.Array,
                 free_gates: jax.Array, read_index: jax.Array, read_weights: jax.Array
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``dnc_addressing.usage`` where it changes: at the rows written and read at t - 1.

    Args:
      usage: (B, N) u_{t-1}.
      write_index: (B, J) the rows w^w_{t-1} covers.
      write_weights: (B, J) w^w_{t-1} there.
      free_gates: (B, R).
      read_index: (B, R, S) the rows w^r_{t-1} covers.
      read_weights: (B, R, S) w^r_{t-1} there.

    Returns:
      ``(u_t (B, N), rows (B, J + R S), retention psi at those rows)``.
    """
    B, R = free_gates.shape
    rows = jnp.concatenate([write_index, read_index.reshape(B, -1)], axis=-1)
    w = totals(write_index, write_weights, rows)
    read = jax.vmap(totals, in_axes=(1, 1, None), out_axes=1)(read_index, read_weights, rows)
    psi = jnp.prod(1.0 - free_gates[..., None] * read, axis=1)  # (B, C)
    u = _take(usage, rows)
    return set_rows(usage, rows, (u + w - u * w) * psi), rows, psi


def sparse_allocation(usage: jax.Array, k: int, lift: float = 0.0
                      ) -> tuple[jax.Array, jax.Array]:
    """``dnc_addressing.allocation`` over the K least used rows: ``(rows (B, K), a_t there)``.
    The free list is their order by usage, the lowest row first among equals (not
    differentiated); the rows outside it get nothing.

    Usage is taken as ``lift + (1 - lift) u``. The DNC lifts it by 1e-6 so that its product
    (a sum of logarithms when ranked) never has a zero factor; with ``lift=1e-6`` and K = N
    this is the DNC's allocation. Unlifted, a fresh row (usage 0) leaves the rows after it,
    and the gradient through their usage, exactly 0, and the product stays finite. Lifted,
    those rows get about 1e-6, 1e-12, ... at every write, which ranks them behind every fresh
    row: a trained copy with K = 4 used up about three fresh rows an input and failed on
    2^16 rows once they ran out (docs/sdnc.md)."""
    lifted = da.lifted_usage(usage, lift)
    _, rows = jax.lax.top_k(-jax.lax.stop_gradient(lifted), k)
    s = _take(lifted, rows)
    before = jnp.concatenate([jnp.ones_like(s[:, :1]), jnp.cumprod(s[:, :-1], axis=-1)], -1)
    return rows.astype(jnp.int32), (1.0 - s) * before


def sparse_write(memory: jax.Array, index: jax.Array, weights: jax.Array, erase: jax.Array,
                 vector: jax.Array) -> jax.Array:
    """``diffmem.memory.write`` on the rows ``index`` (B, J) with ``weights`` (B, J):
    M[i] <- M[i] (1 - w_i e) + w_i v there, every other row as it was."""
    w = totals(index, weights, index)[..., None]
    old = sm.gather_rows(memory, index)
    return set_rows(memory, index, old * (1.0 - w * erase[:, None, :]) + w * vector[:, None, :])


def _rebuild(index, value, stamp, keep_before, keep_after, rows, row_weights, write_index,
             write_weights, new_index, new_values, new_valid):
    """One side of the link (``index``/``value``/``stamp``) with ``rows`` (B, M) rebuilt:
    each entry (row i, column j) decays by 1 - w_i - w_j, the candidates ``new_index``
    (B, C) add ``new_values`` (B, M, C) where ``new_valid``, and each row keeps its K_L
    largest, stamped with ``keep_after``."""
    k = index.shape[-1]
    old_index, old = _entries(index, value, stamp, keep_before, rows)  # (B, M, K_L)
    decay = 1.0 - row_weights[..., None] - totals(write_index, write_weights, old_index)
    old = jnp.where(old_index == rows[..., None], 0.0, decay * old)  # no self-links
    candidates = jnp.broadcast_to(new_index[:, None, :], new_values.shape)
    new_valid = new_valid & (candidates != rows[..., None])
    same = (old_index[..., :, None] == candidates[..., None, :])  # (B, M, K_L, C)
    old = old + jnp.einsum("bmkc,bmc->bmk", same.astype(old.dtype),
                           jnp.where(new_valid, new_values, 0.0))
    new_valid = new_valid & ~jnp.any(same, axis=-2)  # added to an entry held already
    kept_index, kept = _keep_largest(
        jnp.concatenate([old_index, candidates], -1), jnp.concatenate([old, new_values], -1),
        jnp.concatenate([jnp.ones_like(old, bool), new_valid], -1), k)
    return (set_rows(index, rows, kept_index), set_rows(value, rows, kept),
            set_rows(stamp, rows, _take(keep_after, kept_index)))


def sparse_link(link: LazyLink, keep_log: jax.Array, precedence_index: jax.Array,
                precedence: jax.Array, write_index: jax.Array, write_weights: jax.Array
                ) -> tuple[LazyLink, jax.Array]:
    """``dnc_addressing.link`` on the sparse link: ``(L_t, keep_log_t)`` from L_{t-1},
    keep_log_{t-1}, p_{t-1} (B, K_L) and w^w_t (B, J):

        L_t[i, j] = (1 - w_i - w_j) L_{t-1}[i, j] + w_i p_{t-1}[j],  i != j

    The rows of L written (w_i > 0) and the rows of L^T written or preceded (w_j or p_j > 0)
    are rebuilt and keep their K_L largest entries; every other entry decays through
    ``keep_log`` (module docstring)."""
    w_rows = totals(write_index, write_weights, write_index)
    keep_after = sm.scatter_add_rows(
        keep_log[..., None], jnp.where(first_listed(write_index), write_index, keep_log.shape[1]),
        jnp.log(jnp.maximum(1.0 - w_rows, _TINY))[..., None])[..., 0]
    side = dict(keep_before=keep_log, keep_after=keep_after, write_index=write_index,
                write_weights=write_weights)
    # Rows of L: row i written gains w_i p_j at the columns j the precedence holds.
    forward = _rebuild(
        link.forward_index, link.forward_value, link.forward_stamp, rows=write_index,
        row_weights=w_rows, new_index=precedence_index,
        new_values=w_rows[..., None] * precedence[:, None, :],
        new_valid=jnp.ones(write_index.shape + precedence.shape[-1:], bool), **side)
    # Rows of L^T: row j gains w_i p_j at the rows i written (each distinct row once).
    rows = jnp.concatenate([write_index, precedence_index], axis=-1)
    p_rows = totals(precedence_index, precedence, rows)
    backward = _rebuild(
        link.backward_index, link.backward_value, link.backward_stamp, rows=rows,
        row_weights=totals(write_index, write_weights, rows), new_index=write_index,
        new_values=p_rows[..., None] * w_rows[:, None, :],
        new_valid=jnp.broadcast_to(first_listed(write_index)[:, None, :],
                                   rows.shape + write_index.shape[-1:]), **side)
    return LazyLink(*forward, *backward), keep_after


def sparse_precedence(precedence_index: jax.Array, precedence: jax.Array,
                      write_index: jax.Array, write_weights: jax.Array
                      ) -> tuple[jax.Array, jax.Array]:
    """``dnc_addressing.precedence`` keeping its K_L largest entries: p_t = (1 - sum w) p_{t-1}
    + w, ``(rows (B, K_L), p_t there)``."""
    kept = (1.0 - jnp.sum(write_weights, -1, keepdims=True)) * precedence
    return _merged(jnp.concatenate([precedence_index, write_index], -1),
                   jnp.concatenate([kept, write_weights], -1), precedence.shape[-1])


def _entries(index: jax.Array, value: jax.Array, stamp: jax.Array, keep_log: jax.Array,
             rows: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The entries of ``rows`` (B, ...) of one side of the link: (columns, values), each
    (B, ..., K_L)."""
    columns = sm.gather_rows(index, rows)
    return columns, sm.gather_rows(value, rows) * jnp.exp(_take(keep_log, columns)
                                                          - sm.gather_rows(stamp, rows))


def sparse_directions(link: LazyLink, keep_log: jax.Array, read_index: jax.Array,
                      read_weights: jax.Array, k: int
                      ) -> tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
    """``dnc_addressing.directional_weights``, each kept to its K largest entries: f = L w^r
    from the rows of L^T that w^r_{t-1} (B, R, S) covers, b = L^T w^r from those of L.
    Returns ``((rows, f), (rows, b))``, each (B, R, K)."""
    B, R, S = read_index.shape

    def follow(index, value, stamp):
        columns, values = _entries(index, value, stamp, keep_log, read_index)  # (B, R, S, K_L)
        values = values * read_weights[..., None]
        return _merged(columns.reshape(B, R, -1), values.reshape(B, R, -1), k,
                       keep_log.shape[1])

    forward = follow(link.backward_index, link.backward_value, link.backward_stamp)
    backward = follow(link.forward_index, link.forward_value, link.forward_stamp)
    return forward, backward


def dense_link(link: LazyLink, keep_log: jax.Array) -> jax.Array:
    """The (B, N, N) matrix L that ``link``'s rows of L hold (for pictures and tests)."""
    B, N, _ = link.forward_index.shape
    columns, values = _entries(link.forward_index, link.forward_value, link.forward_stamp,
                               keep_log, jnp.broadcast_to(jnp.arange(N), (B, N)))
    return jnp.zeros((B, N, N), values.dtype).at[
        jnp.arange(B)[:, None, None], jnp.arange(N)[None, :, None], columns].add(values)


def spread(index: jax.Array, weights: jax.Array, rows: int) -> jax.Array:
    """A sparse weighting over all ``rows``: (B, ..., A) -> (B, ..., N)."""
    lead = index.shape[:-1]
    flat = jnp.zeros((*lead, rows), weights.dtype).reshape(-1, rows)
    out = jax.vmap(lambda z, i, w: z.at[i].add(w))(
        flat, index.reshape(-1, index.shape[-1]), weights.reshape(-1, index.shape[-1]))
    return out.reshape(*lead, rows)


# ----------------------------------------------------------------------------------------
# The modules


class SDNCCell(DNCCell):
    """One step of the SDNC, a cell of flax.nnx's protocol, with the DNC's parameters and
    order of operations (``diffmem.dnc.DNCCell``) on sparse weightings (module docstring).

    Takes ``DNCCell``'s arguments, with:
      read_topk: K, the rows each content lookup reads and the least used rows allocation
        ranks (Rae et al. use 4 to 8).
      link_topk: K_L, the entries kept per row of the link matrix and of its transpose, and
        per forward and backward weighting (the paper's 8).
      usage_lift: the lift of usage before allocation (``sparse_allocation``), in [0, 1):
        0 (the default), or the DNC's 1e-6, with which K = K_L = N gives the DNC exactly. Not
        a configuration field: a saved run loads with 0.
    """

    def __init__(self, input_size: int, output_size: int | None, *, read_topk: int = 4,
                 link_topk: int = LINK_TOPK, memory_rows: int = 128, usage_lift: float = 0.0,
                 **kwargs: Any):
        if not 0.0 <= usage_lift < 1.0:
            raise ValueError(f"usage_lift={usage_lift!r} must be in [0, 1): 0, or the DNC's "
                             "1e-6")
        for name, value in (("read_topk", read_topk), ("link_topk", link_topk)):
            if (isinstance(value, bool) or not isinstance(value, int)
                    or not 1 <= value <= memory_rows):
                raise ValueError(f"{name}={value!r} must be an integer from 1 to memory_rows="
                                 f"{memory_rows}: it counts distinct rows")
        super().__init__(input_size, output_size, memory_rows=memory_rows, link_topk=link_topk,
                         **kwargs)
        self.read_topk = read_topk
        self.usage_lift = usage_lift

    def initial_state(self, batch_size: int) -> SDNCState:
        """An empty memory, no usage, links or weightings (listed on rows 0, 1, ...)."""
        B, N, W, R = batch_size, self.memory_rows, self.memory_width, self.read_heads
        K, KL = self.read_topk, self.link_topk
        zeros = lambda *shape: jnp.zeros(shape, self.param_dtype)  # noqa: E731
        rows = lambda *shape: jnp.broadcast_to(  # noqa: E731
            jnp.arange(shape[-1], dtype=jnp.int32) % N, shape)
        link_index = rows(B, N, KL)
        return SDNCState(
            controller=self.controller.initial_state(B), memory=zeros(B, N, W),
            usage=zeros(B, N), keep_log=zeros(B, N),
            link=LazyLink(link_index, zeros(B, N, KL), zeros(B, N, KL), link_index,
                          zeros(B, N, KL), zeros(B, N, KL)),
            precedence_index=rows(B, KL), precedence=zeros(B, KL),
            read_index=rows(B, R, K + 2 * KL), read_weights=zeros(B, R, K + 2 * KL),
            write_index=rows(B, 2 * K), write_weights=zeros(B, 2 * K), reads=zeros(B, R, W))

    def check_state(self, state: SDNCState) -> None:
        """Raise ValueError if ``state`` is not of this cell's memory."""
        want = ((self.memory_rows, self.memory_width), self.read_heads,
                (self.read_topk, self.link_topk))
        got = (state.memory.shape[-2:], state.read_index.shape[-2],
               (state.write_index.shape[-1] // 2, state.precedence.shape[-1]))
        if got != want:
            raise ValueError(
                f"the state holds a {got[0][0]} x {got[0][1]} memory, {got[1]} read heads and "
                f"K, K_L = {got[2]}; this SDNC has {want[0][0]} x {want[0][1]}, {want[1]} and "
                f"{want[2]}: pass a state of this model (or None)")

    def step(self, state: SDNCState, x: jax.Array) -> tuple[SDNCState, jax.Array, DNCTrace]:
        """One step: ``(state, x (B, C_in)) -> (state, y (B, C_out), trace of this step)``."""
        B = x.shape[0]
        N, R, W = self.memory_rows, self.read_heads, self.memory_width
        K, KL = self.read_topk, self.link_topk
        h, controller_state, xi = self._control(state, x)

        # Allocate and write.
        usage, freed, psi = sparse_usage(state.usage, state.write_index, state.write_weights,
                                         xi.free_gates, state.read_index, state.read_weights)
        mem = state.memory
        if self.deallocation:  # the rows read at t - 1 are the only ones psi scales
            mem = set_rows(mem, freed, sm.gather_rows(mem, freed) * psi[..., None])
        alloc_index, alloc = sparse_allocation(usage, K, self.usage_lift)
        write_mask = None if xi.write_mask is None else xi.write_mask[:, None]
        looked_up = sm.top_rows(mem, xi.write_key[:, None], K, write_mask)[:, 0]
        content_w = _content(sm.gather_rows(mem, looked_up), xi.write_key, xi.write_strength,
                             xi.write_mask)
        write_index = jnp.concatenate([alloc_index, looked_up], axis=-1)
        g_a, g_w = xi.allocation_gate[:, None], xi.write_gate[:, None]
        w_w = g_w * jnp.concatenate([g_a * alloc, (1.0 - g_a) * content_w], axis=-1)
        mem = sparse_write(mem, write_index, w_w, xi.erase, xi.write_vector)

        # Temporal links, then read.
        link, keep_log = sparse_link(state.link, state.keep_log, state.precedence_index,
                                     state.precedence, write_index, w_w)
        prec_index, prec = sparse_precedence(state.precedence_index, state.precedence,
                                             write_index, w_w)
        (f_index, forward), (b_index, backward) = sparse_directions(
            link, keep_log, state.read_index, state.read_weights, KL)
        if xi.link_sharpness is not None:
            forward = da.sharpen_directional(forward, xi.link_sharpness[..., 0, :])
            backward = da.sharpen_directional(backward, xi.link_sharpness[..., 1, :])
        c_index = sm.top_rows(mem, xi.read_keys, K, xi.read_masks)
        content_r = _content(sm.gather_rows(mem, c_index), xi.read_keys, xi.read_strengths,
                             xi.read_masks)
        modes = xi.read_modes
        read_index = jnp.concatenate([b_index, c_index, f_index], axis=-1)
        w_r = jnp.concatenate([modes[..., 0:1] * backward, modes[..., 1:2] * content_r,
                               modes[..., 2:3] * forward], axis=-1)
        reads = jnp.einsum("brs,brsw->brw", w_r, sm.gather_rows(mem, read_index))

        y = self._output(jnp.concatenate([h, reads.reshape(B, R * W)], axis=-1))
        new_state = SDNCState(controller_state, mem, usage, keep_log, link, prec_index, prec,
                              read_index, w_r, write_index, w_w, reads)
        trace = DNCTrace(spread(read_index, w_r, N), spread(write_index, w_w, N)[:, None],
                         xi.erase[:, None], xi.write_vector[:, None], reads, usage,
                         xi.allocation_gate, xi.write_gate, xi.free_gates, modes, None)
        return new_state, y, trace

    def __call__(self, state: SDNCState | None, x: jax.Array) -> tuple[SDNCState, jax.Array]:
        """``(state, x_t (*B, C_in)) -> (state, y_t (*B, C_out))``, any batch axes;
        ``state=None`` starts afresh."""
        x = check_input(x, None, self.input_size, "x", self.param_dtype)
        if state is None:
            state = self.initialize_carry(x.shape)
        self.check_state(state)
        return over_batch_axes(lambda s, x_t: self.step(s, x_t)[:2], state, x)


class SDNC(nnx.Module):
    """The SDNC over whole sequences: ``SDNCCell`` scanned over time with ``jax.lax.scan``,
    called like ``diffmem.DNC`` (``return_trace=True`` also returns a ``DNCTrace``,
    its weightings spread over all N rows and the final link matrix dense: for pictures of
    small memories).

    Takes the same arguments as ``SDNCCell`` (its ``model.cell``) and ``state_grad_clip``
    (see ``diffmem.ntm.NTM``). There is no ``remat``: the backward pass keeps a few rows a
    step, where a rematerialised step would keep its whole input state, and recomputing a
    step could choose other rows where two are near ties. With ``seq_lengths`` every step
    selects each part of the state by sequence, a pass over the memory a step that equal
    lengths do not make.
    """

    has_memory = True

    def __init__(self, input_size: int, output_size: int | None, *,
                 state_grad_clip: float | None = None, **kwargs: Any):
        self.cell = SDNCCell(input_size, output_size, **kwargs)
        self.input_size, self.output_size = input_size, output_size
        self.out_features = self.cell.out_features
        self.state_grad_clip = check_state_grad_clip(state_grad_clip)

    def initial_state(self, batch_size: int) -> SDNCState:
        return self.cell.initial_state(batch_size)

    def __call__(self, inputs: jax.Array, state: SDNCState | None = None, *,
                 seq_lengths: jax.Array | None = None, return_trace: bool = False):
        inputs = check_input(inputs, 3, self.input_size, "inputs", self.cell.param_dtype)
        seq_lengths = check_lengths(seq_lengths, inputs.shape[0])
        if state is None:
            state = self.initial_state(inputs.shape[0])
        self.cell.check_state(state)
        logits, state, trace = scan_steps(self.cell.step, state, inputs, return_trace,
                                           self.state_grad_clip, remat=None,
                                           seq_lengths=seq_lengths)
        if not return_trace:
            return logits, state
        return logits, state, trace._replace(link=dense_link(state.link, state.keep_log))
