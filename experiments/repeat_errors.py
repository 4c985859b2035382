"""Where a repeat-copy model goes wrong when asked for more repeats than it was trained on.

    python experiments/repeat_errors.py runs/sweeps/repeat-copy-ntm-lstm-curriculum/trials/*/seed-*

For each run (its best model) on 64 sequences of L=10 vectors repeated R=20 times (training
saw R up to 10): the fraction of wrong bits over the whole output, the wrong content bits in
repeats 1-10 and 11-20, the end-marker channel's share of the wrong bits, and the repeat at
which the model first sets the end marker (median; the true one is after repeat 20). Prints
one JSON line per run.

The count channel is (R - 5.5) / sqrt(8.25): 1.57 for R=10 but 5.05 for R=20, far outside
what the controller saw, so a model that reads it through saturating units ends early.
"""

from __future__ import annotations

import argparse
import json

import jax
import numpy as np

import diffmem
from diffmem import tasks

LENGTH, REPEATS = 10, 20


def repeat_errors(run_dir: str, count: int = 64, seed: int = 7) -> dict:
    model, config = diffmem.load(run_dir)
    if config.task != "repeat-copy":
        raise SystemExit(f"{run_dir}: a {config.task} run; this measures repeat copy")
    batch = tasks.get("repeat-copy").sample(jax.random.key(seed), count, length=LENGTH,
                                            repeats=REPEATS)
    logits, _ = model(batch.inputs)
    mask = np.asarray(batch.mask) > 0
    # The output steps of every sequence (all the same length here): (B, L*R + 1, 9).
    predicted = (np.asarray(logits) > 0)[mask].reshape(count, -1, logits.shape[-1])
    target = (np.asarray(batch.targets) > 0.5)[mask].reshape(count, -1, logits.shape[-1])
    wrong = predicted != target
    steps = LENGTH * REPEATS
    content = wrong[:, :steps, :8].reshape(count, REPEATS, LENGTH, 8).mean(axis=(0, 2, 3))
    marker = predicted[:, :, 8]
    first = [int(np.argmax(m)) if m.any() else steps + 1 for m in marker]
    return {
        "run": run_dir,
        "wrong_pct": round(100 * float(wrong.mean()), 2),
        "content_wrong_pct_repeats_1_10": round(100 * float(content[:10].mean()), 2),
        "content_wrong_pct_repeats_11_20": round(100 * float(content[10:].mean()), 2),
        "marker_wrong_bits_pct": round(100 * float(wrong[:, :, 8].sum() / wrong.size), 2),
        "first_end_marker_after_repeat": float(np.median(first)) / LENGTH,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="repeat-copy run directories")
    parser.add_argument("--count", type=int, default=64)
    args = parser.parse_args()
    for run in args.runs:
        print(json.dumps(repeat_errors(run, args.count)), flush=True)


if __name__ == "__main__":
    main()
