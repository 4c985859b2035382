#!/usr/bin/env bash
# The sparse DNC (docs/sdnc.md): the bench up to 2^20 rows, the trainings, ten copy seeds, and
# how long a sequence each trained model gets right on a memory of 2^16 rows. Run from the
# repository root on an idle machine, one job at a time:
#   bash results/sdnc/run.sh
# The SAM, DNC and NTM rows it is compared with are results/sam/*-long.jsonl.
set -euo pipefail
out=results/sdnc
# A training step at 2^20 rows, then the default SDNC from 2^10 to 2^20 rows at batch 1.
diffmem bench --model sdnc --memory-rows 1048576 --batch-sizes 1 --json > $out/bench-1m.json
diffmem bench --model sdnc --memory-rows 1024,16384,65536,262144,1048576 --batch-sizes 1 \
    --seconds 5 --json > $out/bench-default.json
# Training, seed 0, the defaults: runs/reproduce/TASK-sdnc-default and the results table's
# records, results/reproduce/TASK-sdnc-default.json.
for task in copy associative-recall repeat-copy dynamic-ngrams priority-sort; do
    python experiments/reproduce.py $task --models sdnc
done
# Long sequences on 2^16 rows, one size a command (a command pads its sizes to the
# longest), 16 sequences each.
long() {  # CHECKPOINT SIZES...
    local checkpoint=$1; shift
    for size in "$@"; do
        diffmem eval "$checkpoint" --sizes "$size" --count 16 --memory-rows 65536 --json \
            | python -c "import json, sys; [print(json.dumps({'model': 'sdnc', **r}))
for r in json.load(sys.stdin)]"
    done
}
latest() { ls -d runs/reproduce/$1-sdnc-default-* | tail -n 1; }  # reproduce.py's newest run
long "$(latest copy)" 120 200 500 1000 2000 > $out/copy-long.jsonl
long "$(latest associative-recall)" 6 12 20 50 100 200 500 > $out/associative-recall-long.jsonl
