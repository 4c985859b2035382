"""Time a forward and backward pass of the default-sized SDNC (copy length 20, 41 steps) with
the directional weightings' repeated candidates summed by comparing pairs or through a row
buffer (``diffmem.sdnc._merged``), to see which is cheaper at a memory size and batch:

    python benchmarks/sdnc_merge.py ROWS BATCH pairs|buffer

"buffer" is the library's own rule (a buffer while ROWS <= candidates^2, pairs beyond).
Prints milliseconds per time step.
"""

import argparse
import time

import jax
from flax import nnx

import diffmem.sdnc as sd


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rows", type=int)
    p.add_argument("batch", type=int)
    p.add_argument("mode", choices=("pairs", "buffer"))
    p.add_argument("--seconds", type=float, default=4.0)
    args = p.parse_args()
    if args.mode == "pairs":
        merged = sd._merged
        sd._merged = lambda index, values, k, rows=None: merged(index, values, k, None)
    model = sd.SDNC(9, 8, memory_rows=args.rows, memory_width=20, read_topk=4, link_topk=8,
                    controller_size=100, content_masking=True, deallocation=True,
                    link_sharpness=True, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    inputs = jax.random.normal(jax.random.key(0), (args.batch, 41, 9))
    grad = jax.jit(jax.grad(lambda p: (nnx.merge(graphdef, p)(inputs)[0] ** 2).sum()))
    jax.block_until_ready(grad(params))
    start, runs = time.perf_counter(), 0
    while time.perf_counter() - start < args.seconds:
        jax.block_until_ready(grad(params))
        runs += 1
    ms = (time.perf_counter() - start) / runs / inputs.shape[1] * 1000
    print(f"{args.mode}: {args.rows} rows, batch {args.batch}: {ms:.2f} ms a step")


if __name__ == "__main__":
    main()
