#!/usr/bin/env bash
# The seed-stability study (README, "Seed stability: ten seeds"): seeds 0 to 9 of copy and of
# associative recall with the default settings (`diffmem train copy`, `diffmem train
# associative-recall`). Each task's seeds run as two sweeps side by side, even seeds on CPU
# core 0 and odd seeds on core 1, each with single-threaded XLA so that they do not share a
# core; the joint table follows. Every sweep prints, and its results file holds, per seed:
# whether the target was reached, in how many sequences and seconds, the generalisation errors
# and the non-finite events. Seeds already in a results file are kept, so an interrupted study
# can be run again. About 2 minutes per copy seed and 3 to 10 per associative-recall seed.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs/seeds results/seeds
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
pin() { if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }
for task in associative-recall copy; do
    pin 0 python experiments/sweep.py "$task" --seeds 0,2,4,6,8 --runs runs/seeds \
        --out "results/seeds/$task-even.json" > "runs/seeds/$task-even.log" 2>&1 &
    pin 1 python experiments/sweep.py "$task" --seeds 1,3,5,7,9 --runs runs/seeds \
        --out "results/seeds/$task-odd.json" > "runs/seeds/$task-odd.log" 2>&1 &
    wait
    echo "## $task"
    python experiments/sweep.py --table "results/seeds/$task-even.json" "results/seeds/$task-odd.json"
done
