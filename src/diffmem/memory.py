"""Reading from and writing to the NTM's memory matrix (paper section 3.1 and 3.2).

Pure functions of arrays. Shape letters: B batch, N memory rows, M row width, W write heads.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def read(memory: jax.Array, w: jax.Array) -> jax.Array:
    """Read (paper eq. 2): r = sum_i w(i) M(i).

    Args:
      memory: (B, N, M). With read heads on an extra axis use (B, 1, N, M).
      w: (B, N) read weighting, or (B, R, N) for R heads.

    Returns:
      (B, M) read vector, or (B, R, M).
    """
    # einsum is one batched matrix product, several times faster than multiply-and-sum on a CPU.
    return jnp.einsum("...n,...nm->...m", jnp.asarray(w), jnp.asarray(memory))


def write(memory: jax.Array, w: jax.Array, erase: jax.Array, add: jax.Array) -> jax.Array:
    """Write with one head (paper eqs. 3-4): M(i) <- M(i) * (1 - w(i) e) + w(i) a.

    Args:
      memory: (B, N, M)
      w: (B, N) write weighting.
      erase: (B, M) erase vector e, each element in [0, 1].
      add: (B, M) add vector a.

    Returns:
      (B, N, M) the memory after the write.
    """
    w, erase, add = (jnp.asarray(x)[..., None, :] for x in (w, erase, add))  # one-head axis
    return write_heads(memory, w, erase, add)


def write_heads(memory: jax.Array, w: jax.Array, erase: jax.Array, add: jax.Array) -> jax.Array:
    """Write with W heads at once.

    The paper notes that with several write heads the order of the erasures does not matter
    (multiplication commutes) and neither does the order of the additions. All erasures are
    applied first, then all additions:

        M(i) <- M(i) * prod_h (1 - w_h(i) e_h) + sum_h w_h(i) a_h

    Args:
      memory: (B, N, M)
      w: (B, W, N) write weightings.
      erase: (B, W, M) erase vectors, each element in [0, 1].
      add: (B, W, M) add vectors.

    Returns:
      (B, N, M) the memory after the write.
    """
    memory, w, erase, add = (jnp.asarray(x) for x in (memory, w, erase, add))
    # A loop over the (few) heads: each term fuses with the next into one pass over the memory,
    # and its gradient stays elementwise (jnp.prod's gradient is far costlier on the CPU).
    for h in range(w.shape[-2]):
        memory = memory * (1.0 - w[..., h, :, None] * erase[..., h, None, :])  # (B, N, M)
    for h in range(w.shape[-2]):
        memory = memory + w[..., h, :, None] * add[..., h, None, :]  # (B, N, M)
    return memory
