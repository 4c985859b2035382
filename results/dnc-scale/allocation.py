"""Allocation's two ways, timed forward and forward with backward at several memory sizes:
ranking the rows pairwise (an (N, N) comparison and one matrix-vector product) and sorting them
(``lax.sort``), timed alone; ``allocation_rule.py`` times the two inside whole updates, the choice
``diffmem.dnc_addressing.SORT_FROM_ENTRIES`` makes.

    python results/dnc-scale/allocation.py > results/dnc-scale/allocation.json
"""

from __future__ import annotations

import json
import time

import jax

from diffmem import dnc_addressing as da
from diffmem.training.summary import machine_description


def microseconds(fn, u, seconds: float = 1.0) -> float:
    compiled = jax.jit(fn).lower(u).compile()
    jax.block_until_ready(compiled(u))
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        jax.block_until_ready(compiled(u))
        calls += 1
    return 1e6 * (time.perf_counter() - start) / calls


if __name__ == "__main__":
    rows = []
    for batch in (1, 16):
        for n in (128, 256, 512, 1024, 2048, 4096):
            u = jax.random.uniform(jax.random.key(0), (batch, n))
            row = {"batch_size": batch, "memory_rows": n}
            for name, fn in (("ranked", da._ranked_allocation), ("sorted", da._sorted_allocation)):
                row[f"{name}_us"] = microseconds(fn, u)
                row[f"{name}_with_gradient_us"] = microseconds(
                    jax.grad(lambda u, fn=fn: (fn(u) ** 2).sum()), u)
            rows.append({**row, "device": machine_description()})
    print(json.dumps(rows, indent=2))
