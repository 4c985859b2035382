#!/usr/bin/env bash
# The copy DNC's refinements and training memory (results/dnc-switches/, docs/dnc.md): from the
# default (32 rows in training, 128 in evaluation, content masking, de-allocation and link
# sharpness on), each refinement alone, all but each, none, and 128 rows in training with and
# without them. Seed 0, 10 minutes each, early stop at the target. Two queues side by side,
# each pinned to one core with single-threaded XLA. About 40 minutes.
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
    run 0 masking --set $D=false --set $S=false
    run 0 deallocation --set $M=false --set $S=false
    run 0 sharpness --set $M=false --set $D=false
    run 0 rows128-paper --set $M=false --set $D=false --set $S=false \
        --set model.memory_rows=128 --set model.eval_memory_rows=none
} > runs/dnc-switches/queue-0.log 2>&1 &
{
    run 1 no-masking --set $M=false
    run 1 no-deallocation --set $D=false
    run 1 no-sharpness --set $S=false
    run 1 rows128 --set model.memory_rows=128 --set model.eval_memory_rows=none
} > runs/dnc-switches/queue-1.log 2>&1 &
wait
