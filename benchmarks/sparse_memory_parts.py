"""The parts of a sparse access memory step over 2^20 rows of width 32, timed alone: the
similarity of one key to every row, the top 4 of them (exact and approximate), and one
elementwise pass over the memory (what a copy of it costs). Exploratory, for issue 36:

    python benchmarks/sparse_memory_parts.py
"""

import time

import jax
import jax.numpy as jnp


def milliseconds(f, *args, seconds: float = 2.0) -> float:
    compiled = jax.jit(f).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        jax.block_until_ready(compiled(*args))
        calls += 1
    return (time.perf_counter() - start) / calls * 1e3


if __name__ == "__main__":
    scores = jax.random.normal(jax.random.key(0), (1, 1, 2**20))
    memory = jax.random.normal(jax.random.key(1), (1, 2**20, 32))
    key = jax.random.normal(jax.random.key(2), (1, 1, 32))
    parts = {
        "top_k, 4 of 2^20": (lambda x: jax.lax.top_k(x, 4), scores),
        "approx_max_k, 4 of 2^20": (lambda x: jax.lax.approx_max_k(x, 4), scores),
        "similarity, 2^20 x 32": (lambda m, k: jnp.einsum("bnw,brw->brn", m, k), memory, key),
        "one pass over the memory (128 MiB)": (lambda m: m * 1.0001, memory),
    }
    for name, (f, *args) in parts.items():
        print(f"{name}: {milliseconds(f, *args):.2f} ms")
