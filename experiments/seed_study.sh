#!/usr/bin/env bash
# The seed-stability study (docs/seed-studies.md; records in results/seeds/): seeds 0 to 9 of
# associative recall and of copy with the default settings (`diffmem train associative-recall`,
# `diffmem train copy`). Two sweeps run side by side, each pinned to one CPU core with
# single-threaded XLA: even seeds on core 0, odd seeds on core 1, associative recall first, then
# copy. The joint tables follow. `seed_study.sh dnc` does the same for the DNC on copy, and
# `seed_study.sh copy` or `seed_study.sh associative-recall` for that task alone. Every
# sweep prints, and its results file holds, per seed: whether the target was reached, in how
# many sequences and seconds, the generalisation errors and the non-finite events. Seeds
# already in a results file are kept, so an interrupted study can be run again. About 2 minutes
# per copy seed and 2 to 30 per associative-recall seed.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs/seeds results/seeds
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
pin() { if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }
study_tasks=(associative-recall copy)
case "${1:-}" in copy|associative-recall) study_tasks=("$1") ;; esac
half() {  # core, name, seeds
    for task in "${study_tasks[@]}"; do
        pin "$1" python experiments/sweep.py "$task" --seeds "$3" --runs runs/seeds \
            --out "results/seeds/$task-$2.json"
    done > "runs/seeds/study-$2.log" 2>&1
}
if [ "${1:-}" = dnc ]; then  # `seed_study.sh dnc`: ten seeds of `diffmem train copy --model dnc`
    dnc() {  # core, name, seeds
        pin "$1" python experiments/sweep.py copy --model dnc --seeds "$3" --runs runs/seeds \
            --out "results/seeds/copy-dnc-$2.json" > "runs/seeds/study-dnc-$2.log" 2>&1
    }
    dnc 0 even 0,2,4,6,8 &
    dnc 1 odd 1,3,5,7,9 &
    wait
    python experiments/sweep.py --table results/seeds/copy-dnc-even.json results/seeds/copy-dnc-odd.json
    exit
fi
half 0 even 0,2,4,6,8 &
half 1 odd 1,3,5,7,9 &
wait
for task in "${study_tasks[@]}"; do
    echo "## $task"
    python experiments/sweep.py --table "results/seeds/$task-even.json" "results/seeds/$task-odd.json"
done
