#!/usr/bin/env bash
# The DNC at its paper's sizes against the eager `dnc` package, and the scaling records of
# docs/throughput.md. Run from the repository root on an idle machine, one job at a time:
#   bash results/dnc-scale/run.sh [TORCH_PYTHON]
# TORCH_PYTHON: a Python with torch and the `dnc` package (benchmarks/torch_eager_dnc.py says
# how to make one); without it the baseline is skipped.
set -euo pipefail
out=results/dnc-scale
paper="--set model.memory_width=64 --set model.read_heads=4 --set model.controller_size=256"
plain="--set model.content_masking=false --set model.deallocation=false --set model.link_sharpness=false"
diffmem bench --model dnc $paper $plain --memory-rows 128,256,512,1024 --batch-sizes 1,16,64 \
    --seconds 5 --json > $out/dnc-dense.json
diffmem bench --model dnc $paper $plain --set model.link_topk=8 \
    --memory-rows 128,256,512,1024,2048,4096 --batch-sizes 1,16,64 --seconds 5 --json \
    > $out/dnc-sparse-k8.json
# The floor: the same DNC where the work that grows with N is small, beside N = 256.
diffmem bench --model dnc $paper $plain --memory-rows 8,16,256 --batch-sizes 1,16,64 \
    --seconds 5 --json > $out/dnc-floor.json
# Where the time goes at N = 256 (one core, one XLA thread).
for link in dense 8; do
    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" taskset -c 0 \
        python $out/ablate.py 256 1,16,64 $link base,alloc,link,alloc+link,alloc+link+content
done > $out/ablate.jsonl
# A sorting network for allocation's free list against lax.sort.
XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" taskset -c 0 \
    python $out/sort.py allocation > $out/sort.jsonl
python $out/sort.py update >> $out/sort.jsonl
diffmem bench --model ntm-lstm $paper --memory-rows 128,256,512,1024,2048,4096 \
    --batch-sizes 1,16 --seconds 5 --json > $out/ntm.json
# The NTM's rows at 16,384 and 65,536 rows (batch 1), added to ntm.json; it plans 4 GB at the
# second, and about 64 GB would not fit at 2^20.
diffmem bench --model ntm-lstm $paper --memory-rows 16384,65536 --batch-sizes 1 --seconds 5 \
    --json > $out/ntm-large.json
python -c "import json; a, b = (json.load(open(f'$out/{n}.json')) for n in ('ntm', 'ntm-large'));
json.dump(a + b, open('$out/ntm.json', 'w'), indent=2)" && rm $out/ntm-large.json
diffmem bench --model sam $paper --memory-rows 128,1024,8192,65536,262144,1048576 \
    --batch-sizes 1 --seconds 5 --json > $out/sam.json
diffmem bench --model sdnc $paper --memory-rows 128,1024,8192,65536,262144,1048576 \
    --batch-sizes 1 --seconds 5 --json > $out/sdnc.json
if [ $# -ge 1 ]; then
    sizes="--memory-width 64 --read-heads 4 --controller-size 256 --seconds 5 --warmup 1 --json"
    "$1" benchmarks/torch_eager_dnc.py --memory-rows 128,256,512 --batch-sizes 1,16,64 $sizes \
        > $out/torch-eager-dnc.json
    "$1" benchmarks/torch_eager_dnc.py --memory-rows 1024 --batch-sizes 1,16 $sizes \
        > $out/torch-eager-dnc-1024.json
    # At N = 1,024 and batch 64 the package ran out of the machine's 24 GiB and was killed.
fi
