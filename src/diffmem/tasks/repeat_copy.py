"""The repeat copy task (paper section 4.2): copy a sequence a given number of times, then
mark the end."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from diffmem.tasks.base import Batch, Task, positive_int


class RepeatCopy(Task):
    """Copy L random 8-bit vectors R times, then emit an end marker.

    L is uniform in 1..10 and R uniform in 1..10 for training. Layout for L = 2, R = 2
    (rows are channels, columns time steps; T = L + 2 + L*R + 1 = 9):

                    t: 0  1  2  3  4  5  6  7  8
        inputs  0-7:   a  b  .  .  .  .  .  .  .      a, b: the random 8-bit vectors
                  8:   .  .  1  .  .  .  .  .  .      delimiter flag
                  9:   .  .  .  n  .  .  .  .  .      n = (R - 5.5) / sqrt(8.25)
        targets 0-7:   .  .  .  .  a  b  a  b  .
                  8:   .  .  .  .  .  .  .  .  1      end marker
        mask:          0  0  0  0  1  1  1  1  1

    The repeat count is normalised to mean 0 and variance 1 over the training range of R
    (for 1..10: mean 5.5, variance 8.25), and keeps that scale beyond it.
    """

    name = "repeat-copy"
    target_bits = 0.1
    eval_sizes = (
        {"length": 10, "repeats": 10},
        {"length": 20, "repeats": 10},
        {"length": 10, "repeats": 20},
    )
    generalisation_check = (({"length": 20, "repeats": 10}, 0.01),
                            ({"length": 10, "repeats": 20}, 0.01))
    example_size = {"length": 12, "repeats": 10}

    def __init__(self, min_length: int = 1, max_length: int = 10, min_repeats: int = 1,
                 max_repeats: int = 10, bits: int = 8):
        for what, lo, hi in (("length", min_length, max_length),
                             ("repeats", min_repeats, max_repeats)):
            if not 1 <= lo <= hi:
                raise ValueError(
                    f"repeat-copy {what} range must satisfy 1 <= min <= max, got {lo}..{hi}"
                )
        self.min_length, self.max_length = min_length, max_length
        self.min_repeats, self.max_repeats = min_repeats, max_repeats
        self.bits = bits
        self.input_size = bits + 2  # the bits, the delimiter and the repeat count
        self.output_size = bits + 1  # the bits and the end marker
        # Mean and standard deviation of R, uniform on the integers min_repeats..max_repeats.
        span = max_repeats - min_repeats + 1
        self.count_mean = (min_repeats + max_repeats) / 2
        self.count_std = math.sqrt((span * span - 1) / 12) or 1.0

    def training_range(self) -> str:
        return (f"lengths {self.min_length} to {self.max_length}, "
                f"{self.min_repeats} to {self.max_repeats} repeats")

    def memory_needed(self, size: dict[str, Any] | None = None) -> int:
        return (size or {}).get("length") or self.max_length

    def sample(self, key: jax.Array, batch_size: int, length: int | None = None,
               repeats: int | None = None) -> Batch:
        """Fixed ``length`` and ``repeats`` where given; drawn from the training range where
        None."""
        if length is not None:
            length = positive_int(length, "repeat-copy length")
        if repeats is not None:
            repeats = positive_int(repeats, "repeat-copy repeats")
        key_len, key_rep, key_bits = jax.random.split(key, 3)
        max_len = self.max_length if length is None else length
        max_rep = self.max_repeats if repeats is None else repeats
        if length is None:
            L = jax.random.randint(key_len, (batch_size,), self.min_length, self.max_length + 1)
        else:
            L = jnp.full((batch_size,), length)
        if repeats is None:
            R = jax.random.randint(key_rep, (batch_size,), self.min_repeats, self.max_repeats + 1)
        else:
            R = jnp.full((batch_size,), repeats)
        T = max_len + 2 + max_len * max_rep + 1
        vectors = jax.random.bernoulli(key_bits, 0.5, (batch_size, max_len, self.bits))
        vectors = vectors.astype(jnp.float32)  # (B, max_len, 8)

        t = jnp.arange(T)[None, :]  # (1, T)
        L, R = L[:, None], R[:, None]  # (B, 1)
        padded = jnp.pad(vectors, ((0, 0), (0, T - max_len), (0, 0)))  # (B, T, 8)
        data = padded * (t < L)[..., None]
        delimiter = (t == L).astype(jnp.float32)
        count = jnp.where(t == L + 1, (R - self.count_mean) / self.count_std, 0.0)
        inputs = jnp.concatenate([data, delimiter[..., None], count[..., None]], axis=-1)

        # Output phase: steps start .. start + L*R - 1 repeat the vectors, then the end marker.
        start = L + 2
        end = start + L * R  # the end-marker step
        copying = (t >= start) & (t < end)
        source = jnp.clip(jnp.mod(t - start, L), 0, max_len - 1)  # (B, T)
        bits = jnp.take_along_axis(vectors, source[..., None], axis=1) * copying[..., None]
        marker = (t == end).astype(jnp.float32)
        targets = jnp.concatenate([bits, marker[..., None]], axis=-1)  # (B, T, 9)
        mask = ((t >= start) & (t <= end)).astype(jnp.float32)
        return Batch(inputs, targets, mask)

    def parse_size(self, text: str) -> dict[str, int]:
        """``"20x10"``: length 20, 10 repeats."""
        parts = text.lower().split("x")
        try:
            length, repeats = (int(p) for p in parts)
        except ValueError:
            length = repeats = 0
        if length < 1 or repeats < 1:
            raise ValueError(
                f"repeat-copy size {text!r} must be LENGTHxREPEATS with positive integers, "
                "e.g. 20x10"
            )
        return {"length": length, "repeats": repeats}

    def describe_size(self, sizes: dict[str, int]) -> str:
        return f"length {sizes['length']}, {sizes['repeats']} repeats"
