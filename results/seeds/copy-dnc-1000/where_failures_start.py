"""Where a trained copy DNC's failures start. For COUNT fresh sequences of each length, one
JSON line per (model, length): how many sequences have a wrong bit; how many of those, and of
the others, began the answer with the first read head off the first row written (under half
its weight there at the delimiter step, from which the first answer step's forward link
starts); how many failing ones hold an all-zero input vector; and for each failing sequence
the first wrong answer step (0 = the first) and the step at which the head last held half
its weight on the first row.

    python results/seeds/copy-dnc-1000/where_failures_start.py LENGTHS COUNT RUN_DIR...

The sequences are drawn from seeds 1000, 1001, ... in batches of 250, apart from the seeds
of training, validation and the final evaluation. The models are loaded on their evaluation
memory.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np

import diffmem
from diffmem import losses, tasks

BATCH = 250
TASK = tasks.get("copy")


def study(run: str, length: int, count: int) -> dict:
    model, _ = diffmem.load(run)
    out = {"run": run, "length": length, "sequences": 0, "failing": 0,
           "failing_off_first_row": 0, "passing_off_first_row": 0,
           "failing_with_a_zero_vector": 0, "first_wrong_answer_step": [],
           "last_step_on_first_row": []}
    for s in range(-(-count // BATCH)):
        batch = TASK.sample(jax.random.key(1000 + s), BATCH, length=length)
        logits, _, trace = model(batch.inputs, return_trace=True)
        wrong = np.asarray(losses.sequence_bit_errors(logits, batch.targets, batch.mask)) > 0
        first_row = np.asarray(trace.write_weights[:, 0, 0]).argmax(-1)  # the first input's
        head = np.asarray(trace.read_weights[:, :, 0])  # the first read head, (B, T, N)
        on_first = head[np.arange(BATCH), :length + 1, first_row]  # (B, length + 1)
        off = on_first[:, length] < 0.5
        wrong_steps = ((np.asarray(logits) > 0) != (np.asarray(batch.targets) > 0.5)).any(-1)
        wrong_steps &= np.asarray(batch.mask) > 0  # (B, T)
        zeros = np.asarray(batch.inputs[:, :length, :TASK.bits]).sum(-1).min(-1) == 0
        out["sequences"] += BATCH
        out["failing"] += int(wrong.sum())
        out["failing_off_first_row"] += int((wrong & off).sum())
        out["passing_off_first_row"] += int((~wrong & off).sum())
        out["failing_with_a_zero_vector"] += int((wrong & zeros).sum())
        for i in np.nonzero(wrong)[0]:
            out["first_wrong_answer_step"].append(
                int(np.nonzero(wrong_steps[i])[0][0]) - length - 1)
            held = np.nonzero(on_first[i] >= 0.5)[0]
            out["last_step_on_first_row"].append(int(held[-1]) if len(held) else -1)
    return out


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    lengths, count = [int(n) for n in sys.argv[1].split(",")], int(sys.argv[2])
    for run in sys.argv[3:]:
        for length in lengths:
            print(json.dumps(study(run, length, count)), flush=True)


if __name__ == "__main__":
    main()
