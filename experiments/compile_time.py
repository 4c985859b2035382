"""How long XLA takes to compile one NTM training update on this machine, under the XLA_FLAGS
of the environment: the test suite's configuration (copy, an LSTM-controller NTM with a
16-unit controller and a 16 x 6 memory, batch 4).

    XLA_FLAGS=--xla_backend_optimization_level=0 python experiments/compile_time.py
    XLA_FLAGS="--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false" \\
        python experiments/compile_time.py

Prints one JSON line: the flags, and the seconds to build the model, to trace and lower the
update, and to compile it. Nothing is cached on disk (JAX's persistent cache stays off unless
JAX_COMPILATION_CACHE_DIR is set).
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
from flax import nnx

from diffmem import tasks
from diffmem.config import resolve
from diffmem.models import build_model
from diffmem.train import TrainState, make_optimizer, make_train_step


def main() -> None:
    config = resolve("copy").replace(
        model=dict(controller_size=16, memory_rows=16, memory_width=6),
        train=dict(batch_size=4))
    started = time.perf_counter()
    graphdef, params, rest = nnx.split(build_model(config), nnx.Param, ...)
    tx = make_optimizer(config.train)
    zero = jnp.zeros((), jnp.int32)
    state = TrainState(params, tx.init(params), zero, zero)
    step = make_train_step(graphdef, rest, tasks.get("copy"), tx, config.train.batch_size)
    built = time.perf_counter()
    lowered = step.lower(state, jax.random.key(0))
    traced = time.perf_counter()
    lowered.compile()
    compiled = time.perf_counter()
    print(json.dumps({"xla_flags": os.environ.get("XLA_FLAGS", ""),
                      "build_seconds": round(built - started, 2),
                      "lower_seconds": round(traced - built, 2),
                      "compile_seconds": round(compiled - traced, 2)}))


if __name__ == "__main__":
    main()
