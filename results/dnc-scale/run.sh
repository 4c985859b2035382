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
diffmem bench --model ntm-lstm $paper --memory-rows 128,256,512,1024,2048,4096 \
    --batch-sizes 1,16 --seconds 5 --json > $out/ntm.json
if [ $# -ge 1 ]; then
    sizes="--memory-width 64 --read-heads 4 --controller-size 256 --seconds 5 --warmup 1 --json"
    "$1" benchmarks/torch_eager_dnc.py --memory-rows 128,256,512 --batch-sizes 1,16,64 $sizes \
        > $out/torch-eager-dnc.json
    "$1" benchmarks/torch_eager_dnc.py --memory-rows 1024 --batch-sizes 1,16 $sizes \
        > $out/torch-eager-dnc-1024.json
    # At N = 1,024 and batch 64 the package ran out of the machine's 24 GiB and was killed.
fi
