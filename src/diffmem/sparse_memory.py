"""Sparse access memory (Rae et al. 2016, "Scaling Memory-Augmented Neural Networks with Sparse
Reads and Writes"): reads over the K rows most similar to a key, and writes to the rows read at
the step before and to the least recently used row, which is erased first.

Pure functions of arrays; ``diffmem.sam`` builds the model on them. Shape letters: B batch,
N memory rows, W row width, R read heads, K rows per read, J = R K + 1 rows a write touches.
One step applies them in this order:

    lru = least_recently_used(last_access)
    touched = touched_rows(read_index_prev, lru)
    M = sparse_write(M, touched, write_weights(read_weights_prev, ...), add, lru)
    read_index, read_weights, reads = sparse_read(M, keys, strengths, k)
    last_access = accessed(last_access, step, touched, write_weights, read_index, read_weights)

Every differentiable use of the memory is a gather or a scatter of a few rows (the search for
the K most similar rows is not differentiated), so a step's backward pass needs the rows it
read and nothing else of the memory (``diffmem.sam``'s scan).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from diffmem.addressing import cosine_similarity

# A row counts as accessed at a step when its read or write weight there exceeds this (the
# paper's delta); its time of last access is then that step.
ACCESS_THRESHOLD = 0.005
# Added to squared norms in the search, so that an all-zero row or key has similarity 0.
_EPS = 1e-12


def gather_rows(memory: jax.Array, index: jax.Array) -> jax.Array:
    """memory[b, index[b, ...]] for every b: (B, N, W), (B, ...) -> (B, ..., W)."""
    return jax.vmap(lambda m, i: m[i])(memory, index)


def scatter_add_rows(memory: jax.Array, index: jax.Array, values: jax.Array) -> jax.Array:
    """memory with values[b, ...] added to rows index[b, ...] (repeated rows add up):
    (B, N, W), (B, ...), (B, ..., W) -> (B, N, W). The transpose of ``gather_rows``."""
    return jax.vmap(lambda m, i, v: m.at[i].add(v))(memory, index, values)


def top_rows(memory: jax.Array, keys: jax.Array, k: int, masks: jax.Array | None = None
             ) -> jax.Array:
    """(B, R, K) int32: for each head the K rows most similar to its key (cosine similarity),
    most similar first. Not differentiated. Exact on the CPU; on accelerators
    ``jax.lax.approx_max_k``, an approximate search that JAX optimises for TPUs (untested on
    a GPU here). With ``masks`` (B, R, W), head r compares ``memory * masks[r]`` with
    ``keys[r] * masks[r]`` (the DNC's content masking), without forming the masked memory."""
    memory, keys = jax.lax.stop_gradient(memory), jax.lax.stop_gradient(keys)
    # The search's pass over the memory: a product and the rows' norms, without
    # ``cosine_similarity``'s rescaling against overflow, which its gradient needs and a
    # search does not, and which costs more passes over the memory.
    if masks is None:
        unit = keys * jax.lax.rsqrt(jnp.sum(keys * keys, -1, keepdims=True) + _EPS)
        norms = jnp.sum(memory * memory, -1)[:, None, :]
    else:
        masks = jax.lax.stop_gradient(masks)
        keys = keys * masks
        unit = keys * masks * jax.lax.rsqrt(jnp.sum(keys * keys, -1, keepdims=True) + _EPS)
        norms = jnp.einsum("bnw,brw->brn", memory * memory, masks * masks)
    similarity = jnp.einsum("bnw,brw->brn", memory, unit) * jax.lax.rsqrt(norms + _EPS)
    if jax.default_backend() == "cpu":
        _, index = jax.lax.top_k(similarity, k)
    else:
        _, index = jax.lax.approx_max_k(similarity, k)
    return index.astype(jnp.int32)


def read_rows(rows: jax.Array, keys: jax.Array, strengths: jax.Array
              ) -> tuple[jax.Array, jax.Array]:
    """The read of K gathered rows (B, R, K, W) by keys (B, R, W) of strengths (B, R): weights
    (B, R, K), a softmax of strength times cosine similarity over the K rows alone, and the
    read vectors (B, R, W)."""
    weights = jax.nn.softmax(strengths[..., None] * cosine_similarity(rows, keys), axis=-1)
    return weights, jnp.einsum("brk,brkw->brw", weights, rows)


def sparse_read(memory: jax.Array, keys: jax.Array, strengths: jax.Array, k: int
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Each head reads the K rows most similar to its key (``top_rows``), weighted by
    ``read_rows``: the gradient reaches those K rows per head and no other.

    Returns ``(index (B, R, K) int32, weights (B, R, K), reads (B, R, W))``.
    """
    index = top_rows(memory, keys, k)
    weights, reads = read_rows(gather_rows(memory, index), keys, strengths)
    return index, weights, reads


def least_recently_used(last_access: jax.Array) -> jax.Array:
    """(B, N) step of each row's last access (-1: never) -> (B,) the least recently used row,
    the lowest-numbered of equals."""
    return jnp.argmin(last_access, axis=-1).astype(jnp.int32)


def write_weights(read_weights_prev: jax.Array, write_gate: jax.Array,
                  interpolation_gate: jax.Array) -> jax.Array:
    """The write weighting over the rows a write touches (paper eq. 4):

        w^W = alpha (gamma w^R_{t-1} + (1 - gamma) I^U)

    with w^R_{t-1} the previous step's read weights averaged over the heads (so that w^W sums
    to alpha) and I^U the least recently used row. ``read_weights_prev`` (B, R, K),
    ``write_gate`` alpha and ``interpolation_gate`` gamma (B,) in [0, 1] -> (B, J): the R K
    previous read rows, then the least recently used row (``touched_rows``'s order).
    """
    heads = read_weights_prev.shape[1]
    previous = read_weights_prev.reshape(read_weights_prev.shape[0], -1) / heads
    weights = jnp.concatenate([interpolation_gate[:, None] * previous,
                               (1.0 - interpolation_gate)[:, None]], axis=-1)
    return write_gate[:, None] * weights


def touched_rows(read_index_prev: jax.Array, least_used: jax.Array) -> jax.Array:
    """(B, J) int32: the rows a write touches, the R K rows read at t - 1 (B, R, K), then the
    least recently used row (B,)."""
    flat = read_index_prev.reshape(read_index_prev.shape[0], -1)
    return jnp.concatenate([flat, least_used[:, None]], axis=-1).astype(jnp.int32)


def erase_row(memory: jax.Array, least_used: jax.Array, live: jax.Array | None = None
              ) -> jax.Array:
    """memory with row ``least_used`` (B,) set to zero, in the sequences where ``live`` (B,)
    holds (all without it). Linear and its own transpose.

    The row's own value is added back negated (exactly zero): a scatter-add that depends on
    the gather of the row lets XLA update the memory in place, where a scatter-multiply or a
    set after another read of the memory made it copy the whole memory (docs/sam.md)."""
    erased = -gather_rows(memory, least_used[:, None])  # (B, 1, W)
    if live is not None:
        erased = erased * live[:, None, None].astype(memory.dtype)
    return scatter_add_rows(memory, least_used[:, None], erased)


def sparse_write(memory: jax.Array, touched: jax.Array, weights: jax.Array, add: jax.Array,
                 least_used: jax.Array, live: jax.Array | None = None) -> jax.Array:
    """Erase the least recently used row, then add ``weights`` times ``add`` to the rows
    touched (paper eq. 5): M_t = (1 - I^U 1^T) M_{t-1} + w^W a^T.

    Args:
      memory: (B, N, W) M_{t-1}.
      touched: (B, J) the rows written (``touched_rows``; a row may appear more than once).
      weights: (B, J) the write weighting over them (``write_weights``).
      add: (B, W) the add vector a.
      least_used: (B,) the least recently used row (``least_recently_used``).
      live: (B,) bool, optional: the sequences that write at all (the others keep M_{t-1}).

    Returns:
      M_t, (B, N, W).
    """
    # A row read at t - 1 may also be the least used: erase first, then add every term.
    rows = weights[..., None] * add[:, None, :]
    if live is not None:
        rows = rows * live[:, None, None].astype(rows.dtype)
    return scatter_add_rows(erase_row(memory, least_used, live), touched, rows)


def accessed(last_access: jax.Array, step: jax.Array, touched: jax.Array,
             weights: jax.Array, read_index: jax.Array, read_weights: jax.Array) -> jax.Array:
    """``last_access`` (B, N) with ``step`` (B,) at every row written or read with a weight
    above ``ACCESS_THRESHOLD``."""
    rows = jnp.concatenate([touched, read_index.reshape(read_index.shape[0], -1)], axis=-1)
    hit = jnp.concatenate([weights, read_weights.reshape(read_weights.shape[0], -1)], axis=-1)
    stamp = jnp.where(hit > ACCESS_THRESHOLD, step[:, None], -1).astype(last_access.dtype)
    return jax.vmap(lambda a, r, s: a.at[r].max(s))(last_access, rows, stamp)
