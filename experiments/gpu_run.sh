#!/usr/bin/env bash
# The GPU measurements of docs/throughput.md and docs/results.md, as one script for a machine
# with an NVIDIA GPU and JAX's CUDA build (run from the repository root; records go under $OUT,
# default results):
#   1. `diffmem bench` at batch sizes 1 to 1024 (the default copy model), alone on the GPU:
#      $OUT/bench/bench-gpu.json;
#   2. five reproductions trained side by side on the same GPU, each with a 5.5-minute budget:
#      $OUT/reproduce/TASK-MODEL-default.json and $OUT/reproduce/gpu-training-logs.txt.
# Usage: OUT=/some/dir bash experiments/gpu_run.sh
set -uo pipefail
OUT=${OUT:-results}
mkdir -p "$OUT/bench" "$OUT/reproduce"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several processes share the GPU
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax, flax, optax; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())" || exit 1
python3 -m diffmem train copy --sequences 64 --set train.eval_every=32 --set train.val_size=8 \
    --set train.eval_count=4 --run-dir /tmp/smoke > /tmp/smoke.log 2>&1 || { tail -20 /tmp/smoke.log; exit 1; }
echo "smoke test passed"

python3 -m diffmem bench --batch-sizes 1,32,256,1024 --seconds 5 --json > "$OUT/bench/bench-gpu.json"
cat "$OUT/bench/bench-gpu.json"

for spec in priority-sort:ntm-lstm priority-sort:ntm-ff priority-sort:lstm \
            repeat-copy:lstm dynamic-ngrams:lstm; do
    python3 experiments/reproduce.py "${spec%%:*}" --models "${spec##*:}" --minutes 5.5 \
        --runs /tmp/runs --out "$OUT/reproduce" > "/tmp/log-${spec%%:*}-${spec##*:}.txt" 2>&1 &
done
wait
tail -n 25 /tmp/log-*.txt > "$OUT/reproduce/gpu-training-logs.txt"
tail -n 4 /tmp/log-*.txt
