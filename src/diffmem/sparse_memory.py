"""Sparse access memory (Rae et al. 2016, "Scaling Memory-Augmented Neural Networks with Sparse
Reads and Writes"): reads over the K rows most similar to a key, writes to the rows read at
the step before and to the least recently used row, and a scan whose backward pass restores
each earlier memory by undoing that step's write instead of storing it.

Pure functions of arrays. Shape letters: B batch, N memory rows, W row width, R read heads,
K rows per read, J = R K + 1 rows a write touches. One step applies them in this order:

    lru = least_recently_used(last_access)
    M, touched, old = sparse_write(M, read_index_prev, read_weights_prev, lru, ...)
    read_index, read_weights, reads = sparse_read(M, keys, strengths, k)
    last_access = accessed(last_access, step, touched, write_weights, read_index, read_weights)

``undo_write(M, touched, old)`` gives back the memory before the write, bit for bit, which is
what ``reversible_scan`` relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffmem.addressing import cosine_similarity

# A row counts as accessed at a step when its read or write weight there exceeds this (the
# paper's delta); its time of last access is then that step.
ACCESS_THRESHOLD = 0.005


def _rows(memory: jax.Array, index: jax.Array) -> jax.Array:
    """memory[b, index[b, ...]] for every b: (B, N, W), (B, ...) -> (B, ..., W)."""
    return jax.vmap(lambda m, i: m[i])(memory, index)


def sparse_read(memory: jax.Array, keys: jax.Array, strengths: jax.Array, k: int
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Each head reads the K rows most similar to its key (cosine similarity), weighted by a
    softmax of strength times similarity over those K alone.

    The choice of rows is not differentiated (as in the paper); the similarities of the chosen
    rows are, through the rows gathered again, so the gradient reaches K rows per head and no
    other.

    Args:
      memory: (B, N, W).
      keys: (B, R, W) read keys.
      strengths: (B, R) key strengths, >= 0.
      k: rows per head, 1 <= k <= N.

    Returns:
      ``(index (B, R, K) int32, weights (B, R, K), reads (B, R, W))``: the rows read, most
      similar first, their weights (summing to 1 per head) and the read vectors.
    """
    similarity = cosine_similarity(jax.lax.stop_gradient(memory)[:, None], keys)  # (B, R, N)
    _, index = jax.lax.top_k(similarity, k)
    rows = _rows(memory, index)  # (B, R, K, W)
    chosen = cosine_similarity(rows, keys)  # (B, R, K)
    weights = jax.nn.softmax(strengths[..., None] * chosen, axis=-1)
    return index, weights, jnp.einsum("brk,brkw->brw", weights, rows)


def least_recently_used(last_access: jax.Array) -> jax.Array:
    """(B, N) step of each row's last access (-1: never) -> (B,) the least recently used row,
    the lowest-numbered of equals."""
    return jnp.argmin(last_access, axis=-1).astype(jnp.int32)


def write_weights(read_weights_prev: jax.Array, write_gate: jax.Array,
                  interpolation_gate: jax.Array) -> jax.Array:
    """The write weighting over the rows a write touches (paper eq. 4):

        w^W = alpha (gamma w^R_{t-1} + (1 - gamma) I^U)

    with w^R_{t-1} the previous step's read weights averaged over the heads and I^U the least
    recently used row. ``read_weights_prev`` (B, R, K), ``write_gate`` alpha and
    ``interpolation_gate`` gamma (B,) in [0, 1] -> (B, J): the R K previous read rows, then
    the least recently used row.
    """
    heads = read_weights_prev.shape[1]
    previous = read_weights_prev.reshape(read_weights_prev.shape[0], -1) / heads
    weights = jnp.concatenate([interpolation_gate[:, None] * previous,
                               (1.0 - interpolation_gate)[:, None]], axis=-1)
    return write_gate[:, None] * weights


def sparse_write(memory: jax.Array, read_index_prev: jax.Array, weights: jax.Array,
                 least_used: jax.Array, add: jax.Array
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Erase the least recently used row, then add ``weights`` times ``add`` to the rows
    touched (paper eq. 5): M_t = (1 - I^U 1^T) M_{t-1} + w^W a^T.

    Args:
      memory: (B, N, W) M_{t-1}.
      read_index_prev: (B, R, K) the rows read at t - 1.
      weights: (B, J) the write weighting over them and the least used row
        (``write_weights``).
      least_used: (B,) the least recently used row.
      add: (B, W) the add vector a.

    Returns:
      ``(memory (B, N, W), touched (B, J) int32, old (B, J, W))``: M_t, the rows written and
      their values in M_{t-1}, which ``undo_write`` puts back.
    """
    touched = jnp.concatenate([read_index_prev.reshape(read_index_prev.shape[0], -1),
                               least_used[:, None]], axis=-1).astype(jnp.int32)
    old = _rows(memory, touched)

    def one(m, rows, w, lru, a):
        # A row read at t - 1 may also be the least used: erase first, then add every term.
        m = m.at[lru].set(0.0)
        return m.at[rows].add(w[:, None] * a[None, :])

    return jax.vmap(one)(memory, touched, weights, least_used, add), touched, old


def undo_write(memory: jax.Array, touched: jax.Array, old: jax.Array) -> jax.Array:
    """M_{t-1} from M_t: the touched rows set back to their old values. A row touched twice
    has the same old value both times, so the order does not matter."""
    return jax.vmap(lambda m, rows, values: m.at[rows].set(values))(memory, touched, old)


def accessed(last_access: jax.Array, step: jax.Array, touched: jax.Array,
             weights: jax.Array, read_index: jax.Array, read_weights: jax.Array) -> jax.Array:
    """``last_access`` (B, N) with ``step`` (B,) at every row written or read with a weight
    above ``ACCESS_THRESHOLD``."""
    rows = jnp.concatenate([touched, read_index.reshape(read_index.shape[0], -1)], axis=-1)
    hit = jnp.concatenate([weights, read_weights.reshape(read_weights.shape[0], -1)], axis=-1)
    stamp = jnp.where(hit > ACCESS_THRESHOLD, step[:, None], -1).astype(last_access.dtype)
    return jax.vmap(lambda a, r, s: a.at[r].max(s))(last_access, rows, stamp)


# ----------------------------------------------------------------------------------------
# A scan that does not store the memory


def _is_float(leaf: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)


def _zero_cotangent(leaf: Any) -> Any:
    if _is_float(leaf):
        return jnp.zeros_like(leaf)
    return np.zeros(np.shape(leaf), dtype=jax.dtypes.float0)


def reversible_scan(step: Callable, undo: Callable, params: Any, small: Any, memory: jax.Array,
                    xs: Any) -> tuple[Any, jax.Array, Any]:
    """``jax.lax.scan`` of ``step(params, small, memory, x) -> (small, memory, y, residual)``
    over the leading axis of ``xs``, whose backward pass keeps each step's ``small`` state and
    ``residual`` but not its memory: it restores M_{t-1} = ``undo(M_t, residual_t)`` going
    back and differentiates the step again from there. ``undo`` must restore the memory
    exactly (``undo_write`` does).

    Memory for the backward pass is then T times the small state and the residual (for sparse
    access memory, O(T (R K W + N)) with the usage) instead of T times the memory (O(T N W)),
    for one more forward pass of each step. Integer leaves of ``small`` (indices, step
    counts) are carried but not differentiated.

    Returns ``(small_T, memory_T, ys)``.
    """
    return _scan(step, undo, params, small, memory, xs)


def _forward(step, params, small, memory, xs):
    def body(carry, x):
        s, m = carry
        s_new, m_new, y, residual = step(params, s, m, x)
        return (s_new, m_new), (y, s, residual)

    (small, memory), (ys, smalls, residuals) = jax.lax.scan(body, (small, memory), xs)
    return small, memory, ys, smalls, residuals


def _scan(step, undo, params, small, memory, xs):
    @jax.custom_vjp
    def run(params, small, memory, xs):
        small, memory, ys, _, _ = _forward(step, params, small, memory, xs)
        return small, memory, ys

    def run_fwd(params, small, memory, xs):
        small_t, memory_t, ys, smalls, residuals = _forward(step, params, small, memory, xs)
        return (small_t, memory_t, ys), (params, small, smalls, residuals, memory_t, xs)

    def run_bwd(saved, cotangents):
        params, small0, smalls, residuals, memory_t, xs = saved
        d_small, d_memory, d_ys = cotangents
        d_small = jax.tree.map(lambda c, s: c if _is_float(s) else None, d_small, small0)

        def back(carry, per_step):
            memory, d_small, d_memory, d_params = carry
            s_prev, residual, x, d_y = per_step
            memory_prev = undo(memory, residual)
            floats = jax.tree.map(lambda a: a if _is_float(a) else None, s_prev)
            ints = jax.tree.map(lambda a: None if _is_float(a) else a, s_prev)

            def differentiable(p, s_float, m, x):
                s = jax.tree.map(lambda f, i: i if f is None else f, s_float, ints,
                                 is_leaf=lambda a: a is None)
                s_new, m_new, y, _ = step(p, s, m, x)
                s_new = jax.tree.map(lambda a: a if _is_float(a) else None, s_new)
                return s_new, m_new, y

            _, vjp = jax.vjp(differentiable, params, floats, memory_prev, x)
            dp, ds, dm, dx = vjp((d_small, d_memory, d_y))
            d_params = jax.tree.map(jnp.add, d_params, dp)
            return (memory_prev, ds, dm, d_params), dx

        d_params = jax.tree.map(jnp.zeros_like, params)
        (_, ds, dm, d_params), dxs = jax.lax.scan(
            back, (memory_t, d_small, d_memory, d_params), (smalls, residuals, xs, d_ys),
            reverse=True)
        d_small0 = jax.tree.map(lambda c, s: c if _is_float(s) else _zero_cotangent(s),
                                ds, small0, is_leaf=lambda a: a is None)
        return d_params, d_small0, dm, dxs

    run.defvjp(run_fwd, run_bwd)
    return run(params, small, memory, xs)
