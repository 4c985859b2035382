"""The priority sort task (paper section 4.5): read vectors with priorities, write back the
highest-priority ones in order."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from diffmem.tasks.base import Batch, Task


class PrioritySort(Task):
    """20 random 8-bit vectors, each with a priority uniform in [-1, 1]; output the 16 with the
    highest priorities, highest first.

    Layout (inputs for 20 steps, one delimiter, then 16 answer steps; T = 37):

                    t: 0   1  ... 19  20  21  22 ... 36
        inputs  0-7:   v0  v1 ... v19  .   .   .  ...  .     the random vectors
                  8:   p0  p1 ... p19  .   .   .  ...  .     their priorities
                  9:   .   .  ...  .   1   .   .  ...  .     delimiter
        targets 0-7:   .   .  ...  .   .  s0  s1 ... s15    vectors by descending priority
        mask:          0   0  ...  0   0   1   1  ...  1

    Priorities are continuous, so ties have probability zero.
    """

    name = "priority-sort"
    target_bits = 20.0  # the paper's NTMs after 1M sequences (about 18-20 bits)
    eval_sizes = ({},)

    def __init__(self, items: int = 20, outputs: int = 16, bits: int = 8):
        if not 1 <= outputs <= items:
            raise ValueError(
                f"priority-sort needs 1 <= outputs <= items, got items={items}, outputs={outputs}"
            )
        self.items, self.outputs, self.bits = items, outputs, bits
        self.input_size = bits + 2  # the bits, the priority and the delimiter
        self.output_size = bits

    def training_range(self) -> str:
        return f"{self.items} vectors, the {self.outputs} with highest priority sorted"

    def memory_needed(self, size: dict[str, Any] | None = None) -> int:
        return self.items

    def sample(self, key: jax.Array, batch_size: int) -> Batch:
        key_bits, key_priority = jax.random.split(key)
        n, out = self.items, self.outputs
        vectors = jax.random.bernoulli(key_bits, 0.5, (batch_size, n, self.bits))
        vectors = vectors.astype(jnp.float32)  # (B, 20, 8)
        priority = jax.random.uniform(key_priority, (batch_size, n), minval=-1.0, maxval=1.0)
        order = jnp.argsort(-priority, axis=1)[:, :out]  # (B, 16), highest priority first
        ranked = jnp.take_along_axis(vectors, order[..., None], axis=1)  # (B, 16, 8)

        delimiter = jnp.zeros((batch_size, 1, self.bits + 2)).at[:, :, -1].set(1.0)
        inputs = jnp.concatenate([
            jnp.concatenate([vectors, priority[..., None], jnp.zeros((batch_size, n, 1))], -1),
            delimiter,
            jnp.zeros((batch_size, out, self.bits + 2)),
        ], axis=1)  # (B, 37, 10)
        targets = jnp.concatenate([jnp.zeros((batch_size, n + 1, self.bits)), ranked], axis=1)
        mask = jnp.concatenate([jnp.zeros((batch_size, n + 1)), jnp.ones((batch_size, out))], 1)
        return Batch(inputs, targets, mask)
