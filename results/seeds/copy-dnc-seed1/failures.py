"""Which copy sequences a trained model gets wrong: for each length, how many of COUNT fresh
sequences have a wrong bit, and how many of those (and of all sequences) hold an input
vector of eight zeros.

    python results/seeds/copy-dnc-seed1/failures.py RUN_DIR [--lengths 10,30,50,80]
        [--count 4000] > failures.json

The sequences are drawn from seeds 1000, 1001, ... in batches of 500, apart from the seeds
of training, validation and the final evaluation.
"""

from __future__ import annotations

import argparse
import json

import jax
import numpy as np

import diffmem
from diffmem import losses, tasks

BATCH = 500


def failures(model, length: int, count: int) -> dict:
    task = tasks.get("copy")
    failing, failing_with_zeros, with_zeros = [], 0, 0
    for s in range(-(-count // BATCH)):
        batch = task.sample(jax.random.key(1000 + s), BATCH, length=length)
        logits, _ = model(batch.inputs)
        wrong = np.asarray(losses.sequence_bit_errors(logits, batch.targets, batch.mask))
        zeros = np.asarray(batch.inputs[:, :length, :task.bits]).sum(-1).min(-1) == 0
        with_zeros += int(zeros.sum())
        for i in np.nonzero(wrong)[0]:
            failing.append(int(wrong[i]))
            failing_with_zeros += int(zeros[i])
    return {"length": length, "sequences": -(-count // BATCH) * BATCH,
            "with_a_zero_vector": with_zeros, "failing": len(failing),
            "failing_with_a_zero_vector": failing_with_zeros, "wrong_bits_of_each": failing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--lengths", default="10,30,50,80")
    parser.add_argument("--count", type=int, default=4000)
    args = parser.parse_args()
    model, _ = diffmem.load(args.run_dir)  # on its evaluation memory
    rows = [failures(model, int(n), args.count) for n in args.lengths.split(",")]
    print(json.dumps({"run": args.run_dir, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
