"""The associative recall task (paper section 4.3): given a list of items and one of them as a
query, return the item that followed it."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from diffmem.tasks.base import Batch, Task, parse_int, positive_int


class AssociativeRecall(Task):
    """k items of 3 random 6-bit vectors each, then a query item; answer with the next item.

    k is uniform in 2..6 for training; the query is a copy of item j, j uniform among the first
    k - 1 items, and the answer is item j + 1. Layout for k = 2 (items x, y of vectors x1 x2 x3
    and y1 y2 y3; the query is x; T = 4k + 8 = 16):

                    t: 0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
        inputs  0-5:   . x1 x2 x3  . y1 y2 y3  . x1 x2 x3  .  .  .  .
                  6:   1  .  .  .  1  .  .  .  .  .  .  .  .  .  .  .   item delimiter
                  7:   .  .  .  .  .  .  .  .  1  .  .  .  1  .  .  .   query delimiter
        targets 0-5:   .  .  .  .  .  .  .  .  .  .  .  .  . y1 y2 y3
        mask:          0  0  0  0  0  0  0  0  0  0  0  0  0  1  1  1

    A batch with different k is right-padded (mask 0) to T = 4 * max_items + 8.
    """

    name = "associative-recall"
    target_bits = 0.1
    eval_sizes = tuple({"items": k} for k in (6, 8, 10, 12, 15, 20))
    generalisation_check = (({"items": 12}, 0.01),)
    example_size = {"items": 10}
    item_steps = 3  # vectors per item

    def __init__(self, min_items: int = 2, max_items: int = 6, bits: int = 6):
        if not 2 <= min_items <= max_items:
            raise ValueError(
                f"associative-recall items must satisfy 2 <= min_items <= max_items, got "
                f"{min_items}..{max_items} (a query needs an item after it)"
            )
        self.min_items, self.max_items, self.bits = min_items, max_items, bits
        self.input_size = bits + 2  # the bits, the item delimiter and the query delimiter
        self.output_size = bits

    def training_range(self) -> str:
        return f"{self.min_items} to {self.max_items} items"

    def memory_needed(self, size: dict[str, Any] | None = None) -> int:
        return ((size or {}).get("items") or self.max_items) * self.item_steps

    def sample(self, key: jax.Array, batch_size: int, items: int | None = None) -> Batch:
        """``items=k`` fixes the number of items; None draws it from the training range."""
        if items is not None:
            items = positive_int(items, "associative-recall items")
            if items < 2:
                raise ValueError(f"associative-recall items={items} must be at least 2")
        key_k, key_j, key_bits = jax.random.split(key, 3)
        max_k = self.max_items if items is None else items
        if items is None:
            k = jax.random.randint(key_k, (batch_size,), self.min_items, self.max_items + 1)
        else:
            k = jnp.full((batch_size,), items)
        j = jax.random.randint(key_j, (batch_size,), 0, k - 1)  # the query item, 0..k-2
        S = self.item_steps
        T = (S + 1) * max_k + 2 * (S + 1)
        vectors = jax.random.bernoulli(key_bits, 0.5, (batch_size, max_k * S, self.bits))
        vectors = vectors.astype(jnp.float32)  # (B, items * 3, 6): item i is rows 3i..3i+2

        t = jnp.arange(T)[None, :]  # (1, T)
        k, j = k[:, None], j[:, None]  # (B, 1)
        q = (S + 1) * k  # the first query delimiter
        # Item phase, t < q: a delimiter every S + 1 steps, then that item's vectors.
        item, phase = t // (S + 1), t % (S + 1)
        in_items = (t < q) & (phase > 0)
        in_query = (t > q) & (t <= q + S)
        answer = (t > q + S + 1) & (t <= q + 2 * S + 1)
        source = jnp.where(in_items, item * S + phase - 1, 0)
        source = jnp.where(in_query, j * S + (t - q - 1), source)
        source = jnp.where(answer, (j + 1) * S + (t - q - S - 2), source)
        picked = jnp.take_along_axis(vectors, source[..., None], axis=1)  # (B, T, 6)
        data = picked * (in_items | in_query)[..., None]
        item_delimiter = ((t < q) & (phase == 0)).astype(jnp.float32)
        query_delimiter = ((t == q) | (t == q + S + 1)).astype(jnp.float32)
        inputs = jnp.concatenate([data, item_delimiter[..., None], query_delimiter[..., None]],
                                 axis=-1)
        mask = answer.astype(jnp.float32)
        targets = picked * mask[..., None]
        return Batch(inputs, targets, mask)

    def parse_size(self, text: str) -> dict[str, int]:
        message = f"associative-recall size {text!r} must be a number of items >= 2, e.g. 12"
        return {"items": parse_int(text, 2, message)}

    def describe_size(self, sizes: dict[str, int]) -> str:
        return f"{sizes['items']} items"
