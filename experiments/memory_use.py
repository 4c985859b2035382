"""How much of its memory a trained NTM uses, from its trace on training sequences.

    python experiments/memory_use.py runs/diag/ar-lstm-b32/lr-0.001-seed-0 \
        runs/diag/ar-lstm-b32/lr-0.003-seed-0

For each run (its best model) on 64 sequences of the training distribution, over the steps
where the input is shown (mask 0) and where the output is asked for (mask 1): how focused the
write and read weightings are (the mean largest weight), how many distinct rows the write head
focuses on per sequence (its argmax), and the mean size of what it adds. A model that stores
its inputs writes sharply to as many rows as it has items; one on a memory-free plateau does
not.
"""

from __future__ import annotations

import argparse
import json

import jax
import numpy as np

import diffmem
from diffmem import tasks


def memory_use(run_dir: str, count: int = 64, seed: int = 1234) -> dict:
    model, config = diffmem.load(run_dir)
    if config.model.kind not in ("ntm-lstm", "ntm-ff"):
        raise SystemExit(f"{run_dir}: a {config.model.kind}; this measures an NTM's heads")
    task = tasks.get(config.task)
    batch = task.sample(jax.random.key(seed), count)
    logits, _, trace = model(batch.inputs, return_trace=True)
    mask = np.asarray(batch.mask) > 0  # (B, T)
    shown = np.asarray(batch.inputs).any(axis=-1) & ~mask  # steps with input, before output
    w_w = np.asarray(trace.write_weights)[:, :, 0]  # (B, T, N), the first write head
    w_r = np.asarray(trace.read_weights)[:, :, 0]
    add = np.abs(np.asarray(trace.add)[:, :, 0]).mean(-1)  # (B, T)
    rows = [len(set(np.argmax(w_w[b][shown[b]], axis=-1))) for b in range(count)]
    items = shown.sum(1)
    return {
        "run": run_dir, "lr": config.train.lr, "batch_size": config.train.batch_size,
        "write_focus_input": float(w_w.max(-1)[shown].mean()),
        "read_focus_output": float(w_r.max(-1)[mask].mean()),
        "rows_written_per_input_step": float(np.mean(np.asarray(rows) / items)),
        "add_size_input": float(add[shown].mean()),
        "bits": float(diffmem.losses.bits_per_sequence(logits, batch.targets, batch.mask)),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+")
    args = p.parse_args()
    for run in args.runs:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                          for k, v in memory_use(run).items()}))


if __name__ == "__main__":
    main()
