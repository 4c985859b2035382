#!/usr/bin/env bash
# The copy DNC's refinements (results/dnc-switches/, docs/dnc.md): from the default (32 rows
# in training, 128 in evaluation, content masking, de-allocation and link sharpness on), all
# but each refinement, and none. Seed 0, 10-minute budget, early stop as the default (12
# validation points below the target). Two queues side by side, each pinned to one core with
# single-threaded XLA. About 15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs/dnc-switches results/dnc-switches
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
pin() { if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi; }
run() {  # core tag overrides...
    local core=$1 tag=$2
    shift 2
    pin "$core" python experiments/reproduce.py copy --models dnc --minutes 10 \
        --runs runs/dnc-switches --out results/dnc-switches --tag "$tag" "$@"
}
M=model.content_masking D=model.deallocation S=model.link_sharpness
{
    run 0 none --set $M=false --set $D=false --set $S=false
    run 0 no-masking --set $M=false
} > runs/dnc-switches/queue-0.log 2>&1 &
{
    run 1 no-deallocation --set $D=false
    run 1 no-sharpness --set $S=false
} > runs/dnc-switches/queue-1.log 2>&1 &
wait
