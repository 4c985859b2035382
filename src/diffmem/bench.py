"""Training throughput: the training loop with everything else removed.

Measures the jit-compiled ``train_step`` (sample a batch, forward over the sequence, backward,
optimiser update) of a model (by default the NTM with an LSTM controller) with its copy settings
on copy sequences of one fixed length, after compiling it, at several batch sizes.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from diffmem import tasks
from diffmem.config import Config, resolve
from diffmem.models import build_model, count_parameters
from diffmem.train import TrainState, machine_description, make_optimizer, make_train_step


def benchmark(
    batch_sizes: list[int], seconds: float = 10.0, length: int = 20, config: Config | None = None
) -> list[dict[str, Any]]:
    """Sequences per second of training at each batch size, with compile time apart.

    Each measurement runs whole steps for at least ``seconds`` after one untimed warm-up step.
    ``config`` chooses the model and its optimiser (default: ``resolve("copy", "ntm-lstm")``).
    """
    config = config or resolve("copy", "ntm-lstm")
    task = tasks.get(config.task)
    rows = []
    for batch_size in batch_sizes:
        model = build_model(config)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        tx = make_optimizer(config.train)
        state = TrainState(params, tx.init(params), jnp.zeros((), jnp.int32))
        step = make_train_step(graphdef, rest, task, tx, batch_size, length=length)
        key = jax.random.key(0)
        start = time.perf_counter()
        compiled = step.lower(state, key).compile()
        compile_seconds = time.perf_counter() - start
        state, m = compiled(state, key)  # warm-up
        jax.block_until_ready(m)
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            state, m = compiled(state, key)
            jax.block_until_ready(m)  # time whole steps, not just their dispatch
            steps += 1
        elapsed = time.perf_counter() - start
        rows.append({
            "model": config.model.kind,
            "memory_rows": config.model.memory_rows,
            "batch_size": batch_size,
            "sequence_length": length,
            "time_steps": task.max_steps(length=length),
            "sequences_per_second": steps * batch_size / elapsed,
            "updates_per_second": steps / elapsed,
            "compile_seconds": compile_seconds,
            "parameters": count_parameters(model),
            "device": machine_description(),
        })
    return rows
