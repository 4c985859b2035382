"""The gradient of each training batch a run met over a stretch of sequences, taken at one
fixed model: which batches pull hardest on a model that has learned the task.

    python experiments/grad_spikes.py RUN_DIR --from 80000 --to 92000

For every update whose batch lies in [from, to) sequences, the batch the run trained on there
(the run's data key, the update's step, batch stream 0: a run without rollbacks) is drawn
again and passed through the run's best model: its loss and the global norm of its gradient,
before clipping. Prints one JSON line per update whose norm is more than ten times the median
(``--all``: every update), then a summary line with the median, the 90th and 99th percentiles
and the largest norms. With ``--checkpoint last`` the run's last checkpoint is used instead of
its best.

A batch whose gradient is many times the median's, met by a model near its best, is a
candidate for what knocked the run off it: gradient clipping by global norm caps the norm,
but Adam divides by a running average of squared gradients that a single large batch barely
moves, so the first updates after it are still large.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np
import optax
from flax import nnx
from repeat_failures import repeat_copy_sizes  # experiments/, beside this script

import diffmem
from diffmem import losses, tasks
from diffmem.train import batch_key, data_key


def batch_gradients(run_dir: str, start: int, stop: int, checkpoint: str = "best") -> list[dict]:
    path = Path(run_dir)
    model, config = diffmem.load(path if checkpoint == "best" else path / "checkpoint.safetensors")
    t = config.train
    if t.curriculum:
        raise SystemExit(f"{run_dir}: trained with a curriculum; this draws the full range only")
    task = tasks.get(config.task)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    key0 = data_key(t.seed)

    @jax.jit
    def grad_of(params, step):
        batch = task.sample(batch_key(key0, step), t.batch_size)

        def loss_fn(p):
            logits, _ = nnx.merge(graphdef, p, rest)(batch.inputs)
            return losses.loss(logits, batch.targets, batch.mask), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        per_sequence = losses.sequence_cross_entropy(logits, batch.targets, batch.mask)
        return loss, optax.tree.norm(grads), per_sequence / losses.LN2, batch.inputs

    rows = []
    for step in range(start // t.batch_size, stop // t.batch_size):
        loss, norm, per_sequence, inputs = grad_of(params, step)
        worst = int(np.argmax(per_sequence))
        row = {"step": step, "sequences": (step + 1) * t.batch_size, "loss": float(loss),
               "grad_norm": float(norm),
               "worst_sequence_bits": round(float(per_sequence[worst]), 2)}
        if config.task == "repeat-copy":
            length, repeats = repeat_copy_sizes(task, np.asarray(inputs[worst:worst + 1]))
            row.update(L=int(length[0]), R=int(repeats[0]))
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--from", dest="start", type=int, required=True, help="sequences")
    parser.add_argument("--to", dest="stop", type=int, required=True, help="sequences")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--all", action="store_true", help="print every update")
    args = parser.parse_args()
    rows = batch_gradients(args.run_dir, args.start, args.stop, args.checkpoint)
    norms = np.array([r["grad_norm"] for r in rows])
    median = float(np.median(norms))
    for row in rows:
        if args.all or row["grad_norm"] > 10 * median:
            print(json.dumps(row))
    top = sorted(rows, key=lambda r: -r["grad_norm"])[:5]
    print(json.dumps({
        "run": args.run_dir, "checkpoint": args.checkpoint, "from": args.start, "to": args.stop,
        "updates": len(rows), "median_grad_norm": round(median, 3),
        "p90_grad_norm": round(float(np.percentile(norms, 90)), 3),
        "p99_grad_norm": round(float(np.percentile(norms, 99)), 3),
        "over_10x_median": int((norms > 10 * median).sum()),
        "largest": [(r["sequences"], round(r["grad_norm"], 1)) for r in top]}))


if __name__ == "__main__":
    main()
