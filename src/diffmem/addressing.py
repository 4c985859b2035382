"""NTM addressing: the four stages that turn a head's parameters into a weighting.

Each function is one equation of Graves, Wayne & Danihelka (2014), section 3.3, written as a
pure function of arrays. Shape letters: B batch, N memory rows, M row width, K shift radius.
Every function accepts extra leading dimensions (for example a head axis: (B, heads, N)) as long
as the arguments broadcast against each other; to address a memory (B, N, M) with keys
(B, heads, M), pass ``memory[:, None]``.

The stages compose as ``address``: content -> interpolate -> shift -> sharpen.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Added under the square root of |u|^2 so that the norm of an all-zero row (or key) is
# sqrt(_NORM_EPS) instead of 0: the cosine stays finite and so does its gradient.
_NORM_EPS = 1e-16
# Added to a weighting before its logarithm in ``sharpen``: exact zeros (which a shift of a
# one-hot weighting produces) would give log(0) = -inf and NaN gradients.
_LOG_EPS = 1e-30


def _norm(u: jax.Array) -> jax.Array:
    """Euclidean norm over the last axis that has a finite gradient at u = 0."""
    return jnp.sqrt(jnp.sum(u * u, axis=-1) + _NORM_EPS)


def cosine_similarity(memory: jax.Array, key: jax.Array) -> jax.Array:
    """K[u, v] = u . v / (|u| |v|) between the key and every memory row (paper eq. 6).

    Args:
      memory: (..., N, M)
      key: (..., M)

    Returns:
      (..., N) similarities in [-1, 1]; all-zero rows or keys give 0, not NaN, and huge values
      do not overflow.
    """
    # The key is scaled to unit length before the product, and the product divided by |u|
    # alone, rather than divided by |u| |v|: the gradient then holds at most 1 / |u|^2 (1e16),
    # never 1 / (|u| |v|)^2 (1e32), which overflows to inf (and inf * 0 to NaN) for all-zero
    # vectors under a large upstream gradient (a key strength of 1e6). Scaling the memory rows
    # too would cost a pass over the memory.
    memory, key = _rescale(jnp.asarray(memory)), _rescale(jnp.asarray(key))
    key = key / _norm(key)[..., None]
    # einsum becomes one batched matrix product, also when a head axis broadcasts against a
    # memory of shape (B, 1, N, M); an elementwise multiply-and-sum is several times slower on
    # the CPU.
    return jnp.einsum("...nm,...m->...n", memory, key) / _norm(memory)  # (..., N)


def _rescale(u: jax.Array) -> jax.Array:
    """u divided by its largest magnitude over the last axis when that exceeds 1, so that
    squares and products cannot overflow float32 (values beyond ~1e19 would). The cosine is
    scale-invariant, so its value is unchanged (up to rounding and the tiny _NORM_EPS), and
    with the scale held constant (stop_gradient) so is its gradient: d/du cos(u / c, v) =
    cos'(u), cos' being homogeneous of degree -1. Vectors within [-1, 1] are left alone: their
    squares cannot overflow, and _NORM_EPS keeps the gradient at tiny vectors finite (scaling
    a 1e-38 vector up to 1 would make it about 1e38 and overflow)."""
    scale = jax.lax.stop_gradient(jnp.max(jnp.abs(u), axis=-1, keepdims=True))
    return u / jnp.maximum(scale, 1.0)


def content_weights(memory: jax.Array, key: jax.Array, beta: jax.Array) -> jax.Array:
    """Content addressing (paper eq. 5): w_c(i) = softmax_i(beta * K[k, M(i)]).

    Args:
      memory: (B, N, M) memory matrix.
      key: (B, M) key vector k.
      beta: (B,) key strength, >= 0. Larger values focus the weighting on the best match.

    Returns:
      (B, N) weighting: non-negative, sums to 1 over N.
    """
    beta = jnp.asarray(beta)
    return jax.nn.softmax(beta[..., None] * cosine_similarity(memory, key), axis=-1)


def interpolate(w_content: jax.Array, w_prev: jax.Array, g: jax.Array) -> jax.Array:
    """Interpolation gate (paper eq. 7): w_g = g * w_c + (1 - g) * w_{t-1}.

    Args:
      w_content: (B, N) content weighting w_c.
      w_prev: (B, N) the head's weighting at the previous step.
      g: (B,) gate in [0, 1]; 1 keeps only the content weighting, 0 only the previous one.

    Returns:
      (B, N) weighting.
    """
    g = jnp.asarray(g)[..., None]
    return g * jnp.asarray(w_content) + (1.0 - g) * jnp.asarray(w_prev)


def shift(w: jax.Array, s: jax.Array) -> jax.Array:
    """Circular convolution with the shift weighting (paper eq. 8).

    w_s(i) = sum_{d=-K..K} s(d) * w((i - d) mod N)

    ``s[..., K + d]`` is the weight of a shift by d, and a positive d moves attention toward
    higher row indices: a one-hot weighting on row i shifted by a one-hot s at d lands on row
    (i + d) mod N.

    Args:
      w: (B, N) weighting.
      s: (B, 2K+1) shift weighting, non-negative and summing to 1.

    Returns:
      (B, N) weighting.
    """
    w, s = jnp.asarray(w), jnp.asarray(s)
    radius = (s.shape[-1] - 1) // 2
    if s.shape[-1] != 2 * radius + 1:
        raise ValueError(
            f"shift expects an odd number of shift weights (2K+1), got {s.shape[-1]}"
        )
    # jnp.roll(w, d)[i] == w[(i - d) mod N]: exactly the term of shift d. 2K+1 is small (3 in
    # the paper), so a sum of rolls is cheaper and clearer than an FFT or a gather.
    return sum(s[..., radius + d, None] * jnp.roll(w, d, axis=-1)
               for d in range(-radius, radius + 1))


def sharpen(w: jax.Array, gamma: jax.Array) -> jax.Array:
    """Sharpening (paper eq. 9): w(i) = w_s(i)^gamma / sum_j w_s(j)^gamma.

    Computed as softmax(gamma * log w_s), which neither underflows for large gamma nor divides
    by zero when every w_s(i)^gamma rounds to 0.

    Args:
      w: (B, N) weighting w_s (non-negative).
      gamma: (B,) sharpening exponent, >= 1.

    Returns:
      (B, N) weighting: non-negative, sums to 1 over N.
    """
    w, gamma = jnp.asarray(w), jnp.asarray(gamma)
    return jax.nn.softmax(gamma[..., None] * jnp.log(w + _LOG_EPS), axis=-1)


def address(
    memory: jax.Array,
    w_prev: jax.Array,
    key: jax.Array,
    beta: jax.Array,
    g: jax.Array,
    s: jax.Array,
    gamma: jax.Array,
) -> jax.Array:
    """The whole addressing pipeline (paper Figure 2): content, interpolate, shift, sharpen.

    Args:
      memory: (B, N, M), or (B, 1, N, M) for keys with a head axis.
      w_prev: (B, [heads,] N) previous weighting of each head.
      key: (B, [heads,] M); beta, g, gamma: (B, [heads]); s: (B, [heads,] 2K+1).

    Returns:
      (B, [heads,] N) each head's new weighting w_t.
    """
    w_c = content_weights(memory, key, beta)
    w_g = interpolate(w_c, w_prev, g)
    w_s = shift(w_g, s)
    return sharpen(w_s, gamma)
