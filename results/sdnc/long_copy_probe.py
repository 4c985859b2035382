"""Where a trained SDNC's first read head and its write are during one long copy input, every
CHUNK steps: one JSON line per chunk with the step, the rows the head holds most weight on
(and the weights), the rows the write covers, and how many rows have any usage.

    python results/sdnc/long_copy_probe.py RUN_DIR LENGTH ROWS CHUNK [LIFT] > probe.jsonl

LIFT (default 0) lifts usage before allocation as the SDNC did before 0.26.0 with 1e-6
(``SDNCCell.usage_lift``).

The sequence is drawn from seed 1; the model runs on a memory of ROWS rows, the input and the
delimiter in chunks of CHUNK steps, the state carried from one chunk to the next.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np

import diffmem
from diffmem import models, tasks
from diffmem.config import validate


def main() -> None:
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    run, length, rows, chunk = sys.argv[1], *(int(a) for a in sys.argv[2:5])
    model, config = diffmem.load(run)
    model = models.for_evaluation(
        model, validate(config.replace(model={"eval_memory_rows": rows})))
    model.cell.usage_lift = float(sys.argv[5]) if len(sys.argv) == 6 else 0.0
    batch = tasks.get("copy").sample(jax.random.key(1), 1, length=length)
    state = None
    for start in range(0, length + 1, chunk):
        stop = min(start + chunk, length + 1)
        _, state = model(batch.inputs[:, start:stop], state)
        index, weight = np.asarray(state.read_index[0, 0]), np.asarray(state.read_weights[0, 0])
        top = np.argsort(-weight)[:4]
        print(json.dumps({
            "step": stop - 1, "memory_rows": rows, "length": length,
            "usage_lift": model.cell.usage_lift,
            "read_rows": index[top].tolist(), "read_weights": weight[top].round(4).tolist(),
            "write_rows": np.asarray(state.write_index[0]).tolist(),
            "rows_in_use": int((np.asarray(state.usage[0]) > 0).sum())}), flush=True)


if __name__ == "__main__":
    main()
