"""How a trained NTM uses its memory on dynamic N-grams, and where it loses bits to the optimum.

    python experiments/ngram_memory.py runs/s26/ng-ff-r2-seed1 [RUN ...] [--out FILE.jsonl]

For each run (its best model) on the first --sequences of the fixed validation set (the one
every run validates on): its bits per sequence beside the optimal predictor's; the excess
over the optimum split by how often the step's 5-bit context had occurred before in the
sequence (0, 1-3, 4-8, 9 or more times: the optimum counts every earlier occurrence, so a model
that forgets or blurs them loses most where it has seen a context a few times); how the write
head moves (its focus; the share of steps on which its focused row is next to the last
step's, either way round; the distinct rows it focuses on per sequence) and each read head's
focus and weight on the write head's row. A write head that moves one row every step keeps a
tape of the sequence; with 128 rows and 200 steps such a tape overwrites its first 72 steps.
Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import diffmem
from diffmem.checkpoint import CheckpointError
from diffmem.config import ConfigError
from diffmem.tasks.ngrams import DynamicNGrams
from diffmem.train import VALIDATION_SEED, fixed_batches

OCCURRENCES = ((0, 0), (1, 3), (4, 8), (9, np.inf))


def _bits(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-step bits of predicting P(1) = p where the bit was y."""
    return -np.log2(np.where(y > 0.5, p, 1.0 - p))


def _measure(model, task: DynamicNGrams, batch) -> dict[str, np.ndarray]:
    """Per-step arrays of one batch: the model's and the optimum's bits, the mask, how often
    each step's context was seen before, the write head's focused row and largest weight, and
    each read head's largest weight and its weight on the row the write head focuses on."""
    logits, _, trace = model(batch.inputs, return_trace=True)
    y = np.asarray(batch.targets[..., 0])
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits[..., 0], np.float64)))
    p_opt = np.asarray(task.optimal_probabilities(batch.inputs[..., 0]), np.float64)
    w_w = np.asarray(trace.write_weights)[:, :, 0]  # (B, T, N), the first write head
    w_r = np.asarray(trace.read_weights)  # (B, T, R, N)
    on_write_row = np.take_along_axis(w_r, w_w.argmax(-1)[:, :, None, None], axis=-1)[..., 0]
    return {
        "bits": _bits(p, y), "bits_opt": _bits(p_opt, y),
        "mask": np.asarray(batch.mask) > 0,
        "seen": np.asarray(task.context_counts(batch.inputs[..., 0]).sum(-1)),
        "focus": w_w.argmax(-1), "write_max": w_w.max(-1),
        "read_max": w_r.max(-1),  # (B, T, R)
        "read_on_write_row": on_write_row,  # (B, T, R)
    }


def ngram_memory(run_dir: str, sequences: int) -> dict:
    try:
        model, config = diffmem.load(run_dir)
    except (CheckpointError, ConfigError) as err:
        raise SystemExit(f"ngram_memory.py: {err}") from None
    if config.task != "dynamic-ngrams" or config.model.kind not in ("ntm-lstm", "ntm-ff"):
        raise SystemExit(f"{run_dir}: a {config.model.kind} on {config.task}; this measures an "
                         "NTM trained on dynamic-ngrams")
    task = DynamicNGrams()
    parts: dict[str, list[np.ndarray]] = {}
    for batch in fixed_batches(task, sequences, VALIDATION_SEED):
        for name, value in _measure(model, task, batch).items():
            parts.setdefault(name, []).append(value)
    bits, bits_opt, mask, seen, focus, w_w_max, w_r_max, w_r_on_w = (
        np.concatenate(parts[k]) for k in
        ("bits", "bits_opt", "mask", "seen", "focus", "write_max", "read_max",
         "read_on_write_row"))
    excess = (bits - bits_opt) * mask
    rows = config.model.memory_rows
    step = (focus[:, 1:] - focus[:, :-1]) % rows
    moves_one = (step == 1) | (step == rows - 1)  # on to the next row, either way round
    record = {
        "run": run_dir, "read_heads": config.model.read_heads,
        "memory_rows": config.model.memory_rows, "sequences": sequences,
        "bits": float((bits * mask).sum(1).mean()),
        "optimal_bits": float((bits_opt * mask).sum(1).mean()),
    }
    for lo, hi in OCCURRENCES:
        where = mask & (seen >= lo) & (seen <= hi)
        name = f"{lo}+" if hi == np.inf else f"{lo}" if lo == hi else f"{lo}-{hi}"
        record[f"excess_bits_seen_{name}"] = float((excess * where).sum(1).mean())
    record.update({
        "write_focus": float(w_w_max.mean()),
        "write_moves_one_row": float(moves_one.mean()),
        "write_rows_per_sequence": float(np.mean([len(np.unique(f)) for f in focus])),
        "read_focus": [float(f) for f in w_r_max.mean(axis=(0, 1))],
        # A read head on the tape reads the row being written (read_after_write) or the one
        # just before it; this is its weight on the write head's row at the same step.
        "read_on_write_row": [float(f) for f in w_r_on_w.mean(axis=(0, 1))],
    })
    return record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories (their best models)")
    p.add_argument("--sequences", type=int, default=256,
                   help="validation sequences to measure on (the first of the 1,000)")
    p.add_argument("--out", help="append the JSON lines to this file")
    args = p.parse_args()
    if not 1 <= args.sequences <= 1000:
        p.error(f"--sequences {args.sequences}: expected 1 to 1000 (the validation set's size)")
    for run in args.runs:
        line = json.dumps({k: round(v, 4) if isinstance(v, float) else v
                           for k, v in ngram_memory(run, args.sequences).items()})
        print(line)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
