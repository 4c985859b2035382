"""DNC memory addressing: usage, allocation, the temporal link matrix and the read modes.

Each function is one equation of Graves et al. (2016), Methods ("Dynamic memory allocation",
"Temporal memory linkage", "Read weighting"), written as a pure function of arrays. Shape
letters: B batch, N memory rows, R read heads; the DNC has one write head. The functions of
one equation accept extra leading axes as long as the arguments broadcast against each other;
``link_and_directions`` needs arguments with the same leading axes, and the sparse link's
functions exactly one, B. Gradients that are written out (``link_and_directions``,
``allocation``) are reverse-mode only: ``jax.jvp`` does not go through them.

Content lookup is the NTM's (``diffmem.addressing.content_weights``). One DNC step applies
them in this order (SPEC section 3):

    u = usage(u_prev, ww_prev, free_gates, wr_prev)
    a = allocation(u)
    ww = write_weights(a, content_weights(M_prev, k_w, beta_w), g_a, g_w)
    M = memory.write(M_prev, ww, erase, v)
    L = link(L_prev, p_prev, ww);  p = precedence(p_prev, ww)
    f, b = directional_weights(L, wr_prev)
    wr = read_weights(b, content_weights(M, k_r, beta_r), f, modes)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

# Usage is lifted to at least this before allocation (u <- eps + (1 - eps) u), as
# deepmind/dnc does: the allocation's product of usages then never has an exact zero factor,
# so neither it nor its gradient collapses when several rows are unused.
_USAGE_EPS = 1e-6
# Added to a weighting before its logarithm in ``sharpen_directional``.
_LOG_EPS = 1e-30
# The mass below which ``sharpen_directional`` lets a weighting fade instead of normalising it.
_SHARPEN_EPS = 1e-6


def usage(usage_prev: jax.Array, write_weights_prev: jax.Array, free_gates: jax.Array,
          read_weights_prev: jax.Array) -> jax.Array:
    """Usage vector (Methods, "Dynamic memory allocation"):

        psi = prod_i (1 - f_i w^r_{t-1,i})                      (retention)
        u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} * w^w_{t-1}) * psi

    Args:
      usage_prev: (B, N) u_{t-1}, each in [0, 1].
      write_weights_prev: (B, N) w^w_{t-1}.
      free_gates: (B, R) f_i in [0, 1]: may the rows read by head i at t-1 be freed.
      read_weights_prev: (B, R, N) w^r_{t-1,i}.

    Returns:
      (B, N) u_t in [0, 1]: 1 after a full write to a row, 0 after a full free.
    """
    return (usage_prev + write_weights_prev - usage_prev * write_weights_prev) \
        * retention(free_gates, read_weights_prev)


def retention(free_gates: jax.Array, read_weights_prev: jax.Array) -> jax.Array:
    """Retention psi = prod_i (1 - f_i w^r_{t-1,i}): how much of each row survives the free
    gates. ``free_gates`` (B, R), ``read_weights_prev`` (B, R, N) -> (B, N)."""
    return jnp.prod(1.0 - free_gates[..., None] * read_weights_prev, axis=-2)


# Allocation ranks the rows pairwise while the comparison of every pair, B * N * N entries
# (the leading axes of one model's usage times N squared; a vmapped population's members
# count apart), is smaller than this, and sorts them from there. Timed alone, ranking wins to
# N = 512 at batch 16 (results/dnc-scale/allocation.json); inside a whole DNC update (W = 64,
# R = 4, LSTM 256; results/dnc-scale/allocation-rule*.json) sorting was faster from 2^18
# entries (batch 16 at N = 128, batch 1 at N = 512) and ranking below (batch 1 at N = 256).
SORT_FROM_ENTRIES = 2**18


def allocation(usage: jax.Array) -> jax.Array:
    """Allocation weighting (Methods, "Dynamic memory allocation"):

        phi = the row indices sorted by ascending usage (the free list)
        a[phi_j] = (1 - u[phi_j]) * prod_{l<j} u[phi_l]

    The least used row gets the most; with every row in use (u = 1) nothing is allocated.
    Usage is first lifted to eps + (1 - eps) u (eps = 1e-6), so the gradient stays finite.
    The order is not differentiated (it is a constant), as in the paper; equal usages are
    ordered by row (a stable sort).

    While B * N * N is below ``SORT_FROM_ENTRIES`` the free list is computed without a
    sort: row j comes before row i when u[j] < u[i], or when they are equal and j < i. The
    product over the rows before i is then exp(sum_j before[i, j] log u[j]), one (N, N)
    matrix-vector product, which on a CPU was 15 times faster than argsort and gathers
    (batch 32, N = 128, forward and backward), because XLA's sort is a loop of comparisons.
    From there on, the (B, N, N) ranking costs more than the sort, which is then used. Either
    way the gradient is written out, so that the backward pass keeps u (and the order), not
    an (N, N) matrix per step.

    Args:
      usage: (B, N) u_t, each in [0, 1].

    Returns:
      (B, N) a_t: non-negative, summing to at most 1.
    """
    if math.prod(usage.shape) * usage.shape[-1] >= SORT_FROM_ENTRIES:
        return _sorted_allocation(usage)
    return _ranked_allocation(usage)


def lifted_usage(usage: jax.Array, eps: float = _USAGE_EPS) -> jax.Array:
    """u lifted to eps + (1 - eps) u (by default eps = 1e-6, as ``allocation`` ranks and
    multiplies it)."""
    return eps + (1.0 - eps) * jnp.asarray(usage)


def _before(u: jax.Array) -> jax.Array:
    """(..., N, N): at [i, j], 1 where row j comes before row i in the free list (a stable
    sort)."""
    u_i, u_j = u[..., :, None], u[..., None, :]
    rows = jnp.arange(u.shape[-1])
    return ((u_j < u_i) | ((u_j == u_i) & (rows[None, :] < rows[:, None]))).astype(u.dtype)


@jax.custom_vjp
def _ranked_allocation(usage: jax.Array) -> jax.Array:
    return _ranked_fwd(usage)[0]


def _ranked_fwd(usage: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    u = lifted_usage(usage)
    product = jnp.exp(jnp.einsum("...ij,...j->...i", _before(u), jnp.log(u)))
    return (1.0 - u) * product, (u, product)


def _ranked_bwd(residuals: tuple[jax.Array, jax.Array], g: jax.Array) -> tuple[jax.Array]:
    # a_i = (1 - u_i) P_i with log P_i = sum_j before[i, j] log u_j, the order held fixed. P is
    # kept from the forward pass, so the (N, N) order is built once more, not twice.
    u, product = residuals
    g_log_product = g * (1.0 - u) * product
    g_u = -g * product + jnp.einsum("...ij,...i->...j", _before(u), g_log_product) / u
    return ((1.0 - _USAGE_EPS) * g_u,)


_ranked_allocation.defvjp(_ranked_fwd, _ranked_bwd)


def _free_list(u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``u`` (M, N) sorted ascending per row, stably, and the order (M, N) that sorts it."""
    rows = jnp.broadcast_to(jnp.arange(u.shape[-1], dtype=jnp.int32), u.shape)
    return jax.lax.sort((u, rows), dimension=-1, num_keys=1, is_stable=True)


def _unsort(values: jax.Array, order: jax.Array) -> jax.Array:
    """``values`` (M, N) of the free list's positions put back in row order."""
    batch = jnp.arange(values.shape[0])[:, None]
    return jnp.zeros_like(values).at[batch, order].set(values)


@jax.custom_vjp
def _sorted_allocation(usage: jax.Array) -> jax.Array:
    return _sorted_fwd(usage)[0]


def _sorted_fwd(usage: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    shape = usage.shape
    s, order = _free_list(lifted_usage(usage).reshape(-1, shape[-1]))
    log_s = jnp.log(s)
    product = jnp.exp(jnp.cumsum(log_s, axis=-1) - log_s)  # over the rows before each
    return _unsort((1.0 - s) * product, order).reshape(shape), (usage, order)


def _sorted_bwd(residuals: tuple[jax.Array, jax.Array], g: jax.Array) -> tuple[jax.Array]:
    usage, order = residuals
    shape = usage.shape
    s = jnp.take_along_axis(lifted_usage(usage).reshape(-1, shape[-1]), order, axis=-1)
    g = jnp.take_along_axis(g.reshape(-1, shape[-1]), order, axis=-1)
    log_s = jnp.log(s)
    product = jnp.exp(jnp.cumsum(log_s, axis=-1) - log_s)
    # d a_j / d s_i = -P_i for j = i, a_j / s_i for every j after i.
    weighted = g * (1.0 - s) * product
    after = jnp.flip(jnp.cumsum(jnp.flip(weighted, -1), axis=-1), -1) - weighted
    g_s = -g * product + after / s
    return ((1.0 - _USAGE_EPS) * _unsort(g_s, order).reshape(shape),)


_sorted_allocation.defvjp(_sorted_fwd, _sorted_bwd)


def write_weights(allocation: jax.Array, content: jax.Array, allocation_gate: jax.Array,
                  write_gate: jax.Array) -> jax.Array:
    """Write weighting (Methods, "Write weighting"):

        w^w_t = g^w (g^a a_t + (1 - g^a) c^w_t)

    Args:
      allocation: (B, N) a_t.
      content: (B, N) c^w_t, the write key's content weighting.
      allocation_gate: (B,) g^a in [0, 1]: 1 writes where the allocation says, 0 by content.
      write_gate: (B,) g^w in [0, 1]: 0 writes nowhere.

    Returns:
      (B, N) w^w_t, summing to at most 1.
    """
    g_a = jnp.asarray(allocation_gate)[..., None]
    g_w = jnp.asarray(write_gate)[..., None]
    return g_w * (g_a * allocation + (1.0 - g_a) * content)


def precedence(precedence_prev: jax.Array, write_weights: jax.Array) -> jax.Array:
    """Precedence weighting (Methods, "Temporal memory linkage"):

        p_t = (1 - sum_i w^w_t[i]) p_{t-1} + w^w_t        (p_0 = 0)

    How much each row was the last one written to. ``precedence_prev`` (B, N),
    ``write_weights`` (B, N) -> (B, N), summing to at most 1.
    """
    return (1.0 - jnp.sum(write_weights, axis=-1, keepdims=True)) * precedence_prev \
        + write_weights


def link(link_prev: jax.Array, precedence_prev: jax.Array,
         write_weights: jax.Array) -> jax.Array:
    """Temporal link matrix (Methods, "Temporal memory linkage"):

        L_t[i, j] = (1 - w^w_t[i] - w^w_t[j]) L_{t-1}[i, j] + w^w_t[i] p_{t-1}[j],  i != j
        L_t[i, i] = 0                                             (L_0 = 0)

    L_t[i, j] is how much row i was written to right after row j.

    Args:
      link_prev: (B, N, N) L_{t-1}.
      precedence_prev: (B, N) p_{t-1} (the precedence before this step's write).
      write_weights: (B, N) w^w_t.

    Returns:
      (B, N, N) L_t: values in [0, 1], zero diagonal, rows and columns summing to at most 1.
    """
    w_i = write_weights[..., :, None]
    w_j = write_weights[..., None, :]
    new = (1.0 - w_i - w_j) * link_prev + w_i * precedence_prev[..., None, :]
    n = new.shape[-1]
    return new * (1.0 - jnp.eye(n, dtype=new.dtype))


def directional_weights(link: jax.Array, read_weights_prev: jax.Array
                        ) -> tuple[jax.Array, jax.Array]:
    """Forward and backward weightings (Methods, "Temporal memory linkage"):

        f_i = L_t w^r_{t-1,i}        b_i = L_t^T w^r_{t-1,i}

    Forward moves each read head to the rows written after the ones it read; backward to the
    rows written before.

    Args:
      link: (B, N, N) L_t.
      read_weights_prev: (B, R, N) w^r_{t-1,i}.

    Returns:
      (forward (B, R, N), backward (B, R, N)).
    """
    forward = jnp.einsum("...ij,...rj->...ri", link, read_weights_prev)
    backward = jnp.einsum("...ji,...rj->...ri", link, read_weights_prev)
    return forward, backward


@jax.custom_vjp
def link_and_directions(link_prev: jax.Array, precedence_prev: jax.Array,
                        write_weights: jax.Array, read_weights_prev: jax.Array
                        ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``link`` then ``directional_weights`` in one: ``(L_t, forward, backward)`` from
    ``(L_{t-1} (B, N, N), p_{t-1} (B, N), w^w_t (B, N), w^r_{t-1} (B, R, N))``.

    The same values as the two functions, and the same gradients, written out by hand: the
    backward pass keeps only the step's inputs and rebuilds L_t from them, where automatic
    differentiation would keep several (B, N, N) intermediates of every step.
    """
    return _link_and_directions_fwd(link_prev, precedence_prev, write_weights,
                                    read_weights_prev)[0]


def _link_and_directions_fwd(link_prev, precedence_prev, write_weights, read_weights_prev):
    new = link(link_prev, precedence_prev, write_weights)
    forward, backward = directional_weights(new, read_weights_prev)
    return (new, forward, backward), (link_prev, precedence_prev, write_weights,
                                      read_weights_prev)


def _link_and_directions_bwd(residuals, cotangents):
    link_prev, precedence_prev, w, reads = residuals
    g_link, g_forward, g_backward = cotangents
    new = link(link_prev, precedence_prev, w)
    # Through the directions: f_i = L w_i, b_i = L^T w_i.
    g_reads = (jnp.einsum("...ri,...ij->...rj", g_forward, new)
               + jnp.einsum("...ri,...ji->...rj", g_backward, new))
    g = (g_link + jnp.einsum("...ri,...rj->...ij", g_forward, reads)
         + jnp.einsum("...rj,...ri->...ij", g_backward, reads))
    g = g * (1.0 - jnp.eye(g.shape[-1], dtype=g.dtype))  # the diagonal is held at 0
    # Through L_t[i, j] = (1 - w_i - w_j) L_{t-1}[i, j] + w_i p_{t-1}[j].
    g_link_prev = (1.0 - w[..., :, None] - w[..., None, :]) * g
    g_old = g * link_prev
    g_w = (jnp.einsum("...ij,...j->...i", g, precedence_prev)
           - jnp.sum(g_old, axis=-1) - jnp.sum(g_old, axis=-2))
    g_precedence = jnp.einsum("...ij,...i->...j", g, w)
    return g_link_prev, g_precedence, g_w, g_reads


link_and_directions.defvjp(_link_and_directions_fwd, _link_and_directions_bwd)


class SparseLink(NamedTuple):
    """The temporal link matrix kept sparse (Methods, "Sparse link matrix"): K entries per row
    of L and K per row of L^T, which the forward and the backward weightings read.

    ``forward_index[b, i, k]`` is a column j with L[i, j] = ``forward_value[b, i, k]``;
    ``backward_index[b, j, k]`` a row i with L[i, j] = ``backward_value[b, j, k]``. Within a
    row the K indices are distinct; an entry that is not kept is 0. Each side keeps its own K
    largest, so an entry may be kept in one and dropped from the other. With K = N nothing is
    dropped and it is the dense link exactly.
    """

    forward_index: jax.Array  # (B, N, K) int32
    forward_value: jax.Array  # (B, N, K)
    backward_index: jax.Array  # (B, N, K) int32
    backward_value: jax.Array  # (B, N, K)


def empty_sparse_link(batch_size: int, rows: int, k: int, dtype=jnp.float32) -> SparseLink:
    """L_0 = 0 with K entries per row: columns 0 .. K-1, all zero (distinct, as required)."""
    if not 1 <= k <= rows:
        raise ValueError(f"k={k} entries a row must be from 1 to rows={rows}")
    index = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), (batch_size, rows, k))
    value = jnp.zeros((batch_size, rows, k), dtype)
    return SparseLink(index, value, index, value)


def _top(weights: jax.Array, k: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The K largest entries of ``weights`` (B, N), the lowest row first among equals:
    (values (B, K), rows (B, K), the weighting with every other entry 0 (B, N))."""
    values, rows = jax.lax.top_k(weights, k)
    batch = jnp.arange(weights.shape[0])[:, None]
    return values, rows, jnp.zeros_like(weights).at[batch, rows].set(values)


def _update_rows(index: jax.Array, value: jax.Array, kept_w: jax.Array, rows: jax.Array,
                 row_values: jax.Array, columns: jax.Array, column_values: jax.Array
                 ) -> tuple[jax.Array, jax.Array]:
    """One side of the sparse link update. Every entry (i, j) decays by 1 - w_i - w_j; rows
    ``rows`` (B, K) gain ``row_values[i] * column_values[j]`` at ``columns`` (B, K), added to
    an entry they already hold, and keep their K largest; the diagonal stays 0."""
    B = index.shape[0]
    batch = jnp.arange(B)[:, None]
    decay = 1.0 - kept_w[:, :, None] - jnp.take_along_axis(
        kept_w[:, None, :], index.reshape(B, 1, -1), axis=-1).reshape(index.shape)
    value = decay * value
    old_index, old_value = index[batch, rows], value[batch, rows]  # (B, K, K)
    new_index = jnp.broadcast_to(columns[:, None, :], old_index.shape)
    new_value = row_values[:, :, None] * column_values[:, None, :]
    same = old_index[..., :, None] == new_index[..., None, :]  # (B, K, K_old, K_new)
    old_value = old_value + jnp.einsum("...on,...n->...o", same.astype(value.dtype), new_value)
    held = jnp.any(same, axis=-2)
    # An entry already held was added above, and a self-link is never made; -1 keeps both out
    # of the K largest (the K held entries are each about 0 or more), so a row never holds an
    # index twice.
    new_value = jnp.where(held | (new_index == rows[..., None]), -1.0, new_value)
    old_value = jnp.where(old_index == rows[..., None], 0.0, old_value)  # no self-links
    candidates = jnp.concatenate([old_index, new_index], axis=-1)
    values = jnp.concatenate([old_value, new_value], axis=-1)
    values, kept = jax.lax.top_k(values, index.shape[-1])
    kept_index = jnp.take_along_axis(candidates, kept, axis=-1)
    return index.at[batch, rows].set(kept_index), value.at[batch, rows].set(values)


def sparse_link(link: SparseLink, precedence_prev: jax.Array,
                write_weights: jax.Array) -> SparseLink:
    """The link update of ``link`` on sparse weightings (Methods, "Sparse link matrix"): the
    write weighting and the previous precedence each keep their K largest entries (K of
    ``link``), and

        L_t[i, j] = (1 - w_i - w_j) L_{t-1}[i, j] + w_i p_{t-1}[j],  i != j

    on the K entries per row that each side of ``link`` holds: O(N K) work and memory a step
    after the two top-K selections, where the dense ``link`` takes O(N^2).

    Args:
      link: L_{t-1}, K entries per row of L and of L^T.
      precedence_prev: (B, N) p_{t-1}.
      write_weights: (B, N) w^w_t.

    Returns:
      L_t as a ``SparseLink`` of the same K.
    """
    k = link.forward_index.shape[-1]
    w_values, w_rows, w = _top(write_weights, k)
    p_values, p_rows, _ = _top(precedence_prev, k)
    forward = _update_rows(link.forward_index, link.forward_value, w, w_rows, w_values,
                           p_rows, p_values)
    backward = _update_rows(link.backward_index, link.backward_value, w, p_rows, p_values,
                            w_rows, w_values)
    return SparseLink(*forward, *backward)


def sparse_directional_weights(link: SparseLink, read_weights_prev: jax.Array
                               ) -> tuple[jax.Array, jax.Array]:
    """``directional_weights`` on a sparse link: f_i = L w_i from the K entries of each row of
    L, b_i = L^T w_i from those of L^T. ``read_weights_prev`` (B, R, N) -> (forward, backward),
    each (B, R, N)."""
    def follow(index, value):  # (B, N, K) -> (B, R, N)
        B, N, K = index.shape
        gathered = jnp.take_along_axis(read_weights_prev, index.reshape(B, 1, N * K), axis=-1)
        return jnp.einsum("bnk,brnk->brn", value, gathered.reshape(B, -1, N, K))
    return (follow(link.forward_index, link.forward_value),
            follow(link.backward_index, link.backward_value))


def dense_link(link: SparseLink) -> jax.Array:
    """The (B, N, N) matrix that ``link``'s rows of L hold (for pictures and tests)."""
    B, N, _ = link.forward_index.shape
    dense = jnp.zeros((B, N, N), link.forward_value.dtype)
    return dense.at[jnp.arange(B)[:, None, None], jnp.arange(N)[None, :, None],
                    link.forward_index].add(link.forward_value)


def read_weights(backward: jax.Array, content: jax.Array, forward: jax.Array,
                 modes: jax.Array) -> jax.Array:
    """Read weighting (Methods, "Read weighting"):

        w^r_{t,i} = pi_i[0] b_i + pi_i[1] c^r_{t,i} + pi_i[2] f_i

    Args:
      backward: (B, R, N) b_i.
      content: (B, R, N) c^r_{t,i}, each read key's content weighting of the new memory.
      forward: (B, R, N) f_i.
      modes: (B, R, 3) pi_i, a softmax over (backward, content, forward), in that order.

    Returns:
      (B, R, N) w^r_{t,i}, summing to at most 1.
    """
    return (modes[..., 0:1] * backward + modes[..., 1:2] * content
            + modes[..., 2:3] * forward)


def sharpen_directional(weights: jax.Array, sharpness: jax.Array) -> jax.Array:
    """Link-distribution sharpness, after Csordas & Schmidhuber (2019): a forward or backward
    weighting d raised to a learned exponent s >= 1 and normalised, as the NTM sharpens, then
    scaled by m / (m + eps), m = sum(d), eps = 1e-6:

        S(d, s)_i = d_i^s / sum_j d_j^s * m / (m + eps)

    The shape depends on s alone, not on the scale of d. Normalising undoes the link matrix's
    loss of mass: with write weightings of 0.99 each link holds about 0.98, so a head that
    follows the links for 120 steps would keep 0.98^120 = 9% of its weight. The last factor
    leaves a weighting with (almost) no mass, from rows with no successor, near zero instead
    of blowing it up to a uniform one. (Csordas & Schmidhuber normalise to 1 outright.)

    Args:
      weights: (B, R, N) forward or backward weightings.
      sharpness: (B, R) exponents s >= 1 (oneplus of the interface).

    Returns:
      (B, R, N), summing to less than 1.
    """
    # Link values can round a few ulps below 0 (1 - w_i - w_j of a softmax summing to 1 + ulp);
    # the logarithm needs them at 0.
    weights = jnp.maximum(weights, 0.0)
    mass = jnp.sum(weights, axis=-1, keepdims=True)
    shape = jax.nn.softmax(sharpness[..., None] * jnp.log(weights + _LOG_EPS), axis=-1)
    return shape * (mass / (mass + _SHARPEN_EPS))
