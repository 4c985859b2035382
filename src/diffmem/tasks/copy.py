"""The copy task (paper section 4.1): read a sequence of bit vectors, then write it back."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from diffmem.tasks.base import Batch, Task, parse_int, positive_int


class Copy(Task):
    """Copy L random 8-bit vectors after a delimiter; L is uniform in 1..20 for training.

    Layout for L = 3 (rows are channels, columns time steps; T = 2L + 1 = 7):

                    t: 0  1  2  3  4  5  6
        inputs  0-7:   a  b  c  .  .  .  .      a, b, c: the random 8-bit vectors
                  8:   .  .  .  1  .  .  .      delimiter flag
        targets 0-7:   .  .  .  .  a  b  c
        mask:          0  0  0  0  1  1  1

    A batch with sequences of different lengths is right-padded (mask 0) to
    T = 2 * max_length + 1, so every training batch has the same shape.
    """

    name = "copy"
    target_bits = 0.05
    eval_sizes = tuple({"length": L} for L in (10, 20, 30, 50, 80, 120))
    # Exact copies at a short length and well past the training lengths, and nearly exact ones
    # at 120. Length 10 matters for a model evaluated on a larger memory than it trained on.
    generalisation_check = (({"length": 10}, 0.0), ({"length": 30}, 0.0),
                            ({"length": 50}, 0.0), ({"length": 120}, 0.01))
    example_size = {"length": 40}

    def __init__(self, min_length: int = 1, max_length: int = 20, bits: int = 8):
        if not 1 <= min_length <= max_length:
            raise ValueError(
                f"copy lengths must satisfy 1 <= min_length <= max_length, got "
                f"min_length={min_length}, max_length={max_length}"
            )
        self.min_length, self.max_length, self.bits = min_length, max_length, bits
        self.input_size = bits + 1  # the bits and the delimiter flag
        self.output_size = bits

    def training_range(self) -> str:
        return f"lengths {self.min_length} to {self.max_length}"

    def memory_needed(self, size: dict[str, Any] | None = None) -> int:
        return (size or {}).get("length") or self.max_length

    def sample(self, key: jax.Array, batch_size: int, length: int | None = None) -> Batch:
        """``length=None`` draws each sequence's L from the training range; ``length=L``
        fixes it."""
        if length is not None:
            length = positive_int(length, "copy length")
        key_len, key_bits = jax.random.split(key)
        max_len = self.max_length if length is None else length
        if length is None:
            L = jax.random.randint(key_len, (batch_size,), self.min_length, self.max_length + 1)
        else:
            L = jnp.full((batch_size,), length)
        T = 2 * max_len + 1
        vectors = jax.random.bernoulli(key_bits, 0.5, (batch_size, max_len, self.bits))
        vectors = vectors.astype(jnp.float32)  # (B, max_len, 8)

        t = jnp.arange(T)[None, :]  # (1, T)
        L = L[:, None]  # (B, 1)
        # Input: vector t at steps t < L, the delimiter at step L.
        padded = jnp.pad(vectors, ((0, 0), (0, T - max_len), (0, 0)))  # (B, T, 8)
        data = padded * (t < L)[..., None]
        delimiter = (t == L).astype(jnp.float32)[..., None]
        inputs = jnp.concatenate([data, delimiter], axis=-1)  # (B, T, 9)
        # Target: vector (t - L - 1) at steps L + 1 .. 2L.
        mask = ((t > L) & (t <= 2 * L)).astype(jnp.float32)  # (B, T)
        source = jnp.clip(t - L - 1, 0, max_len - 1)  # (B, T)
        targets = jnp.take_along_axis(vectors, source[..., None], axis=1) * mask[..., None]
        return Batch(inputs, targets, mask)

    def parse_size(self, text: str) -> dict[str, int]:
        message = f"copy length {text!r} must be a positive integer, e.g. 120"
        return {"length": parse_int(text, 1, message)}

    def describe_size(self, sizes: dict[str, int]) -> str:
        return f"length {sizes['length']}"

