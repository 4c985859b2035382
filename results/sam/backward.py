"""SAM's own backward pass (``diffmem.sam.sparse_scan``) against JAX differentiating the same
cell through ``diffmem.scan.scan_steps``: the time of a forward and backward pass and the
memory XLA plans for it, at batch 1 on copy-length-20 inputs (41 steps).

    python results/sam/backward.py [--rows 65536,1048576] [--out results/sam/backward.json]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
from flax import nnx

from diffmem.bench import peak_bytes
from diffmem.sam import SAM
from diffmem.scan import scan_steps
from diffmem.training.summary import machine_description

STEPS, REPEATS = 41, 5


def plain(model, inputs):
    ys, _, _ = scan_steps(model.cell.step, model.initial_state(inputs.shape[0]), inputs, False,
                          remat=None)
    return ys


def sparse(model, inputs):
    return model(inputs)[0]


def measure(run, rows: int) -> dict:
    model = SAM(9, 8, memory_rows=rows, memory_width=20, read_topk=4, controller_size=100,
                rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    inputs = jax.random.normal(jax.random.key(0), (1, STEPS, 9))

    def loss(params):
        return (run(nnx.merge(graphdef, params), inputs) ** 2).sum()

    compiled = jax.jit(jax.grad(loss)).lower(params).compile()
    jax.block_until_ready(compiled(params))  # warm-up
    start = time.perf_counter()
    for _ in range(REPEATS):
        jax.block_until_ready(compiled(params))
    seconds = (time.perf_counter() - start) / REPEATS
    return {"memory_rows": rows, "scan": run.__name__, "step_ms": 1000 * seconds / STEPS,
            "peak_bytes": peak_bytes(compiled)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="65536,1048576")
    parser.add_argument("--out")
    args = parser.parse_args()
    records = []
    for rows in map(int, args.rows.split(",")):
        for run in (sparse, plain):
            records.append(measure(run, rows))
            r = records[-1]
            print(f"N = {rows:>9,}  {r['scan']:>6}: {r['step_ms']:8.2f} ms a step, "
                  f"{r['peak_bytes'] / 2**20:8.1f} MiB planned", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": machine_description(), "steps": STEPS,
                       "rows": records}, f, indent=2)


if __name__ == "__main__":
    jnp.zeros(())  # start JAX before timing anything
    main()
