"""DNC memory addressing: usage, allocation, the temporal link matrix and the read modes.

Each function is one equation of Graves et al. (2016), Methods ("Dynamic memory allocation",
"Temporal memory linkage", "Read weighting"), written as a pure function of arrays. Shape
letters: B batch, N memory rows, R read heads; the DNC has one write head. Every function
accepts extra leading axes as long as the arguments broadcast against each other.

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


def allocation(usage: jax.Array) -> jax.Array:
    """Allocation weighting (Methods, "Dynamic memory allocation"):

        phi = the row indices sorted by ascending usage (the free list)
        a[phi_j] = (1 - u[phi_j]) * prod_{l<j} u[phi_l]

    The least used row gets the most; with every row in use (u = 1) nothing is allocated.
    Usage is first lifted to eps + (1 - eps) u (eps = 1e-6), so the gradient stays finite.
    The order is not differentiated (it is a constant), as in the paper.

    The free list is computed without a sort: row j comes before row i when u[j] < u[i], or
    when they are equal and j < i (a stable sort). The product over the rows before i is then
    exp(sum_j before[i, j] log u[j]), one (N, N) matrix-vector product. It gives the sort's
    values and gradients, and on a CPU it is 15 times faster than argsort and gathers
    (batch 32, N = 128, forward and backward), because XLA's sort is a loop of comparisons.

    Args:
      usage: (B, N) u_t, each in [0, 1].

    Returns:
      (B, N) a_t: non-negative, summing to at most 1.
    """
    u = _USAGE_EPS + (1.0 - _USAGE_EPS) * jnp.asarray(usage)
    u_i, u_j = u[..., :, None], u[..., None, :]
    rows = jnp.arange(u.shape[-1])
    before = (u_j < u_i) | ((u_j == u_i) & (rows[None, :] < rows[:, None]))  # (B, N, N)
    log_product = jnp.einsum("...ij,...j->...i", before.astype(u.dtype), jnp.log(u))
    return (1.0 - u) * jnp.exp(log_product)


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
