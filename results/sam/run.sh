#!/usr/bin/env bash
# Sparse access memory (docs/sam.md): the bench up to 2^20 rows, the trainings, and how long a
# sequence each trained model gets right on a memory of 2^16 rows. Run from the repository
# root on an idle machine, one job at a time:
#   bash results/sam/run.sh
set -euo pipefail
out=results/sam
runs=${RUNS:-runs/sam}
# The command, then the default SAM from 2^10 to 2^20 rows at batch 1.
diffmem bench --model sam --memory-rows 1048576 --batch-sizes 1 --json > $out/bench-1m.json
diffmem bench --model sam --memory-rows 1024,16384,65536,262144,1048576 --batch-sizes 1 \
    --seconds 5 --json > $out/bench-default.json
# Training, seed 0, the defaults.
diffmem train copy --model sam --run-dir $runs/copy --no-tensorboard
diffmem train associative-recall --model sam --run-dir $runs/associative-recall --no-tensorboard
for task in copy associative-recall; do
    python experiments/curves.py $runs/$task --out $out/$task-seed0.json
done
# Long sequences on 2^16 rows, one size a command (a command pads its sizes to the longest).
for n in 50 100 200 500 1000 2000 5000 10000; do
    diffmem eval $runs/copy --sizes $n --count 16 --memory-rows 65536 --json
done > $out/copy-long.jsonl
