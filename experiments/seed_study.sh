#!/usr/bin/env bash
# The seed-stability study (README, "Seed stability"): ten seeds each of copy and associative
# recall with the default settings (`diffmem train copy`, `diffmem train associative-recall`),
# one after the other. Each sweep prints a table and a line: how many seeds reached the target,
# in what time, and how many non-finite events occurred. Seeds already in a results file are
# kept, so an interrupted study can be run again. About 2 minutes per copy seed and 3 to 30 per
# associative-recall seed on one CPU core.
set -euo pipefail
cd "$(dirname "$0")/.."
python experiments/sweep.py copy --seeds 0-9 --runs runs/seeds \
    --out results/seeds/copy-ntm-lstm-default.json
python experiments/sweep.py associative-recall --seeds 0-9 --runs runs/seeds \
    --out results/seeds/associative-recall-ntm-ff-default.json
