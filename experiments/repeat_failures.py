"""Which sequences of the training distribution a repeat-copy model still gets wrong.

    python experiments/repeat_failures.py RUN_DIR [RUN_DIR ...] [--batches 32]

Each run's best model is scored on ``--batches`` x 256 fresh sequences of the training
distribution (L and R each uniform in 1..10; seeds 1000 onwards, apart from the validation
set's). Prints one JSON line per run: the bits per sequence, the share of sequences with at
least one wrong bit, the share of the bits that come from sequences with R = 9 or 10, and the
(L, R) cells with the most bits per sequence.

A validation set of 512 sequences sees a model that fails one sequence in a hundred about five
times, each failure costing tens to hundreds of bits: its figure then moves by tenths of a bit
from one log point to the next with no change in the model.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import jax
import numpy as np

import diffmem
from diffmem import losses, tasks

BATCH = 256


def repeat_copy_sizes(task, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """L and R of each repeat-copy sequence, read from its inputs (B, T, 10)."""
    length = inputs[:, :, 8].argmax(axis=1)  # the delimiter's step is L
    count = inputs[np.arange(len(inputs)), length + 1, 9]  # the count step follows it
    return length, np.rint(count * task.count_std + task.count_mean).astype(int)


def failures(run_dir: str, batches: int) -> dict:
    model, config = diffmem.load(run_dir)
    if config.task != "repeat-copy":
        raise SystemExit(f"{run_dir}: a {config.task} run; this measures repeat copy")
    task = tasks.get("repeat-copy")
    @jax.jit
    def score(batch):
        logits, _ = model(batch.inputs)
        return (losses.sequence_cross_entropy(logits, batch.targets, batch.mask) / losses.LN2,
                losses.sequence_bit_errors(logits, batch.targets, batch.mask))

    cells: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for i in range(batches):
        batch = task.sample(jax.random.key(1000 + i), BATCH)
        bits, wrong = (np.asarray(a) for a in score(batch))
        length, repeats = repeat_copy_sizes(task, np.asarray(batch.inputs))
        for L, R, b, w in zip(length, repeats, bits, wrong):
            cell = cells[(int(L), int(R))]
            cell[0] += 1
            cell[1] += int(w > 0)
            cell[2] += float(b)
    n = sum(c[0] for c in cells.values())
    total = sum(c[2] for c in cells.values())
    worst = sorted(cells.items(), key=lambda kv: -kv[1][2] / kv[1][0])[:8]
    return {
        "run": run_dir,
        "sequences": n,
        "bits_per_sequence": round(total / n, 4),
        "sequences_with_a_wrong_bit_pct": round(100 * sum(c[1] for c in cells.values()) / n, 2),
        "bits_share_from_R_9_10_pct": round(
            100 * sum(c[2] for (_, R), c in cells.items() if R >= 9) / max(total, 1e-12), 1),
        "worst_cells": [{"L": L, "R": R, "sequences": c[0], "with_a_wrong_bit": c[1],
                         "bits_per_sequence": round(c[2] / c[0], 2)} for (L, R), c in worst],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="repeat-copy run directories")
    parser.add_argument("--batches", type=int, default=32, help="of 256 sequences each")
    args = parser.parse_args()
    for run in args.runs:
        print(json.dumps(failures(run, args.batches)), flush=True)


if __name__ == "__main__":
    main()
