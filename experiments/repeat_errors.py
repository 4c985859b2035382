"""Where a repeat-copy model goes wrong when asked for more repeats than it was trained on.

    python experiments/repeat_errors.py runs/sweeps/repeat-copy-ntm-lstm-curriculum/trials/*/seed-*

For each run (its best model) on 64 sequences of L=10 vectors repeated R=20 times (training
saw R up to 10): the fraction of wrong bits over the whole output, the wrong content bits in
repeats 1-10 and 11-20, the end-marker channel's share of the wrong bits, and the repeat at
which the model first sets the end marker (median; the true one is after repeat 20), and the
share of the wrong content bits that fall on steps where the model sets the end marker.
Prints one JSON line per run.

The count channel is (R - 5.5) / sqrt(8.25): 1.57 for R=10 but 5.05 for R=20, far outside
what the controller saw. The count probe tests whether that is why the models end early: the
same sequences, with the count step set to what R = 8, 10, 11, 12, 14, 16, 20 or 30 would
give, and the repeat after which the model first sets the end marker for each (median). A
model that counts by the input would move its end with it; one whose reading of the count
saturates at the training range ends at the same repeat for every R beyond it.
"""

from __future__ import annotations

import argparse
import json

import jax
import numpy as np

import diffmem
from diffmem import tasks

LENGTH, REPEATS = 10, 20
PROBED_COUNTS = (8, 10, 11, 12, 14, 16, 20, 30)


def first_marker_repeat(marker: np.ndarray) -> float:
    """Median over sequences of the repeat after which the end marker is first set:
    (B, steps) booleans over the output steps; a sequence that never sets it counts as the
    number of output steps (20.1 repeats)."""
    steps = marker.shape[1]
    first = [int(np.argmax(m)) if m.any() else steps for m in marker]
    return float(np.median(first)) / LENGTH


def repeat_errors(run_dir: str, count: int = 64, seed: int = 7) -> dict:
    model, config = diffmem.load(run_dir)
    if config.task != "repeat-copy":
        raise SystemExit(f"{run_dir}: a {config.task} run; this measures repeat copy")
    task = tasks.get("repeat-copy")
    batch = task.sample(jax.random.key(seed), count, length=LENGTH, repeats=REPEATS)
    mask = np.asarray(batch.mask) > 0

    def predict(inputs) -> np.ndarray:
        """The thresholded outputs over the output steps of every sequence (all the same
        length here): (B, L*R + 1, 9)."""
        logits, _ = model(inputs)
        return (np.asarray(logits) > 0)[mask].reshape(count, -1, logits.shape[-1])

    predicted = predict(batch.inputs)
    target = (np.asarray(batch.targets) > 0.5)[mask].reshape(count, -1, predicted.shape[-1])
    wrong = predicted != target
    steps = LENGTH * REPEATS
    content = wrong[:, :steps, :8].reshape(count, REPEATS, LENGTH, 8).mean(axis=(0, 2, 3))
    marker = predicted[:, :, 8]
    content_wrong = wrong[:, :, :8].sum()
    at_marker = wrong[:, :, :8][marker].sum()

    probe = {}
    for repeats in PROBED_COUNTS:
        # The count step is the one after the delimiter: step LENGTH + 1.
        inputs = batch.inputs.at[:, LENGTH + 1, 9].set(
            (repeats - task.count_mean) / task.count_std)
        probe[str(repeats)] = first_marker_repeat(predict(inputs)[:, :, 8])
    return {
        "run": run_dir,
        "wrong_pct": round(100 * float(wrong.mean()), 2),
        "content_wrong_pct_repeats_1_10": round(100 * float(content[:10].mean()), 2),
        "content_wrong_pct_repeats_11_20": round(100 * float(content[10:].mean()), 2),
        "marker_wrong_bits_pct": round(100 * float(wrong[:, :, 8].sum() / wrong.size), 2),
        "first_end_marker_after_repeat": first_marker_repeat(marker),
        "content_wrong_share_at_marker_steps_pct": round(
            100 * float(at_marker / max(content_wrong, 1)), 1),
        "first_end_marker_after_repeat_by_count_input": probe,
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
