"""Train on your own arrays: write an .npz of sequences, then `diffmem train --data`.

The task, reversing up to 8 tokens of 8 classes, is not one diffmem ships: class targets,
sequences of different lengths, and a mask of the steps that are scored.

    python examples/your_data.py                   # writes reverse.npz, trains 10 minutes
    python examples/your_data.py --write-only      # then: diffmem train --data reverse.npz
"""

import argparse

import numpy as np

from diffmem.cli import main


def write(path, n=5000, longest=8, classes=8, seed=0):
    rng = np.random.default_rng(seed)
    T = 2 * longest + 1
    inputs = np.zeros((n, T, classes + 1), np.float32)
    targets, mask = np.full((n, T), -1), np.zeros((n, T), np.float32)
    for i, L in enumerate(rng.integers(1, longest + 1, n)):
        tokens = rng.integers(0, classes, L)
        inputs[i, np.arange(L), tokens] = 1  # the tokens, one-hot
        inputs[i, L, classes] = 1  # the delimiter
        targets[i, L + 1:2 * L + 1] = tokens[::-1]  # then the tokens, last first
        mask[i, L + 1:2 * L + 1] = 1
    np.savez(path, inputs=inputs, targets=targets, mask=mask, classes=classes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="reverse.npz")
    parser.add_argument("--count", type=int, default=5000, help="sequences in the file")
    parser.add_argument("--write-only", action="store_true")
    args, train_args = parser.parse_known_args()  # the rest goes to `diffmem train`
    write(args.out, n=args.count)
    print(f"wrote {args.out}")
    if not args.write_only:
        raise SystemExit(main(["train", "--data", args.out, "--minutes", "10", *train_args]))
