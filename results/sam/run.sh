#!/usr/bin/env bash
# Sparse access memory (docs/sam.md): the bench up to 2^20 rows, its backward pass against
# JAX's, the trainings, and how long a sequence each trained model gets right on a memory of
# 2^16 rows, beside the shipped NTM and DNC where they fit. Run from the repository root on an
# idle machine, one job at a time:
#   bash results/sam/run.sh
set -euo pipefail
out=results/sam
# A training step at 2^20 rows, then the default SAM from 2^10 to 2^20 rows at batch 1.
diffmem bench --model sam --memory-rows 1048576 --batch-sizes 1 --json > $out/bench-1m.json
diffmem bench --model sam --memory-rows 1024,16384,65536,262144,1048576 --batch-sizes 1 \
    --seconds 5 --json > $out/bench-default.json
python $out/backward.py --out $out/backward.json
# Training, seed 0, the defaults: runs/reproduce/TASK-sam-default and the results table's
# records, results/reproduce/TASK-sam-default.json.
for task in copy associative-recall repeat-copy dynamic-ngrams priority-sort; do
    python experiments/reproduce.py $task --models sam
done
# Ten copy seeds in one population.
diffmem train copy --model sam --seeds 0-9 --minutes 15 --run-dir runs/sam/copy-seeds \
    --no-tensorboard
python experiments/curves.py runs/sam/copy-seeds --out $out/copy-seeds.json \
    --command "diffmem train copy --model sam --seeds 0-9 --minutes 15 --no-tensorboard"
# The first default tried, Adam 3e-3 and 500,000 sequences.
for task in copy associative-recall; do
    diffmem train $task --model sam --set train.lr=0.003 --set train.sequences=500000 \
        --run-dir runs/sam/$task-lr3e-3 --no-tensorboard
    python experiments/curves.py runs/sam/$task-lr3e-3 --out $out/$task-lr3e-3.json \
        --command "diffmem train $task --model sam --set train.lr=0.003 --set train.sequences=500000"
done
# Long sequences, one size a command (a command pads its sizes to the longest), 16 sequences
# each: SAM on 2^16 rows, the shipped DNC on 1,024 (its dense link is N x N), the shipped
# NTM on its own 128.
long() {  # MODEL-LABEL CHECKPOINT ROWS SIZES...
    local label=$1 checkpoint=$2 rows=$3; shift 3
    for size in "$@"; do
        diffmem eval "$checkpoint" --sizes "$size" --count 16 ${rows:+--memory-rows $rows} \
            --json | python -c "import json, sys; [print(json.dumps({'model': '$label', **r}))
for r in json.load(sys.stdin)]"
    done
}
latest() { ls -d runs/reproduce/$1-sam-default-* | tail -n 1; }  # reproduce.py's newest run
{
    long sam "$(latest copy)" 65536 10 20 30 50 100 1000
    long dnc src/diffmem/weights/copy-dnc.safetensors 1024 120 200 500
    long ntm-lstm src/diffmem/weights/copy.safetensors "" 120
} > $out/copy-long.jsonl
{
    long sam "$(latest associative-recall)" 65536 6 12 20 50 100 200 500 1000 \
        2000 5000
    long dnc src/diffmem/weights/associative-recall-dnc.safetensors 1024 20 50 100 200
    long ntm-ff src/diffmem/weights/associative-recall.safetensors "" 20
} > $out/associative-recall-long.jsonl
