"""How a trained copy DNC's first read head holds the first row written while the input
arrives. For COUNT fresh sequences of LENGTH, one JSON line per model: the head's mean weight
on that row over steps 1 to LENGTH (step 0 writes it; step LENGTH is the delimiter, from
which the answer's forward link starts), the mean of its smallest value
over those steps per sequence, and the mean shares of its three read modes (backward, content,
forward) over the same steps.

    python results/seeds/copy-dnc-1000/how_heads_hold.py LENGTH COUNT RUN_DIR...

Sequences are drawn from seeds 2000, 2001, ... in batches of 250 and the models loaded on
their evaluation memory.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np

import diffmem
from diffmem import tasks

BATCH = 250
TASK = tasks.get("copy")


def study(run: str, length: int, count: int) -> dict:
    model, _ = diffmem.load(run)
    on_first, lowest, modes = [], [], []
    for s in range(-(-count // BATCH)):
        batch = TASK.sample(jax.random.key(2000 + s), BATCH, length=length)
        _, _, trace = model(batch.inputs, return_trace=True)
        first_row = np.asarray(trace.write_weights[:, 0, 0]).argmax(-1)
        head = np.asarray(trace.read_weights[:, 1:length + 1, 0])  # (B, length, N)
        held = head[np.arange(BATCH), :, first_row]  # (B, length)
        on_first.append(held.mean(-1))
        lowest.append(held.min(-1))
        modes.append(np.asarray(trace.read_modes[:, 1:length + 1, 0]).mean(1))  # (B, 3)
    modes = np.concatenate(modes)
    return {"run": run, "length": length, "sequences": len(modes),
            "mean_weight_on_first_row": round(float(np.concatenate(on_first).mean()), 4),
            "mean_lowest_weight_on_first_row": round(float(np.concatenate(lowest).mean()), 4),
            "mean_modes_backward_content_forward": [round(float(m), 4) for m in modes.mean(0)]}


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    length, count = int(sys.argv[1]), int(sys.argv[2])
    for run in sys.argv[3:]:
        print(json.dumps(study(run, length, count)), flush=True)


if __name__ == "__main__":
    main()
