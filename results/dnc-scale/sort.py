"""A sorting network for allocation's free list, tried against the ``lax.sort`` that
``diffmem.dnc_addressing._free_list`` uses: allocation alone (forward with backward, the sorted
way), and whole DNC training updates at the paper's bAbI sizes (W = 64, R = 4, LSTM 256, none
of the refinements; dense link and K = 8; copy length 20) at sizes where allocation sorts. Two
rounds, the two free lists one after the other in each. One JSON object per line.

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
        taskset -c 0 python results/dnc-scale/sort.py allocation > results/dnc-scale/sort.jsonl
    python results/dnc-scale/sort.py update >> results/dnc-scale/sort.jsonl

The first part times allocation alone on one core with one thread; the second, whole updates,
wants the machine otherwise idle.
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
from allocation import microseconds  # this folder's; run as a script, it is on the path

from diffmem import dnc_addressing as da
from diffmem.bench import benchmark
from diffmem.config import resolve
from diffmem.training.summary import machine_description


def network_free_list(u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``u`` (M, N) sorted ascending per row and the order that sorts it, as
    ``da._free_list`` gives them, by a bitonic sorting network: log2(P) (log2(P) + 1) / 2
    rounds of compare-and-swap over whole arrays (P, the power of two at or above N), the
    row breaking ties so that the order is the stable sort's."""
    m, n = u.shape
    p = 1 << max(n - 1, 0).bit_length()
    keys = jnp.pad(u, ((0, 0), (0, p - n)), constant_values=jnp.inf)  # pads sort last
    rows = jnp.broadcast_to(jnp.arange(p, dtype=jnp.int32), keys.shape)
    size = 2
    while size <= p:  # merge sorted runs of size / 2 into runs of size
        gap = size // 2
        while gap >= 1:  # compare element i with i + gap inside blocks of 2 * gap
            shape = (m, p // (2 * gap), 2, gap)
            k, r = keys.reshape(shape), rows.reshape(shape)
            k0, k1, r0, r1 = k[:, :, 0], k[:, :, 1], r[:, :, 0], r[:, :, 1]
            ascending = (np.arange(p // (2 * gap)) * 2 * gap & size) == 0
            second_first = (k1 < k0) | ((k1 == k0) & (r1 < r0))
            swap = jnp.where(ascending[None, :, None], second_first, ~second_first)
            keys = jnp.stack([jnp.where(swap, k1, k0), jnp.where(swap, k0, k1)], 2).reshape(m, p)
            rows = jnp.stack([jnp.where(swap, r1, r0), jnp.where(swap, r0, r1)], 2).reshape(m, p)
            gap //= 2
        size *= 2
    return keys[:, :n], rows[:, :n]


FREE_LISTS = {"network": network_free_list, "lax.sort": da._free_list}


def check_network() -> None:
    """The network's order equals ``lax.sort``'s, ties and non-powers of two included."""
    u = jax.random.uniform(jax.random.key(1), (4, 37))
    u = jnp.where(u < 1 / 3, 0.0, u)
    for got, want in zip(jax.jit(network_free_list)(u), jax.jit(da._free_list)(u)):
        assert (got == want).all()


def allocation_rows():
    for round_ in range(2):
        for batch, n in ((1, 1024), (16, 128), (16, 256), (64, 256), (16, 1024), (1, 4096)):
            # Usage with ties: a third of the rows unused.
            u = jax.random.uniform(jax.random.key(0), (batch, n))
            u = jnp.where(u < 1 / 3, 0.0, u)
            for name, free_list in FREE_LISTS.items():
                da._free_list = free_list  # read when the allocation is traced
                grad = jax.grad(lambda u: (da._sorted_allocation(u) ** 2).sum())
                yield {"part": "allocation", "round": round_, "batch_size": batch,
                       "memory_rows": n, "free_list": name,
                       "with_gradient_us": microseconds(grad, u, seconds=2.0)}


def update_rows():
    paper = resolve("copy", "dnc").replace(model=dict(
        memory_width=64, read_heads=4, controller_size=256, content_masking=False,
        deallocation=False, link_sharpness=False))
    for round_ in range(2):
        for k in (None, 8):
            for n, batch in ((256, 16), (256, 64), (1024, 16)):
                for name, free_list in FREE_LISTS.items():
                    da._free_list = free_list
                    r = benchmark([batch], seconds=5, config=paper.replace(
                        model=dict(link_topk=k)), memory_rows=[n])[0]
                    yield {"part": "update", "round": round_, "link_topk": k,
                           "memory_rows": n, "batch_size": batch, "free_list": name,
                           "sequences_per_second": r["sequences_per_second"],
                           "step_ms": r["step_ms"]}


if __name__ == "__main__":
    if sys.argv[1:] not in (["allocation"], ["update"]):
        sys.exit(__doc__)
    check_network()
    rows = allocation_rows() if sys.argv[1] == "allocation" else update_rows()
    for row in rows:
        print(json.dumps({**row, "device": machine_description()}), flush=True)
