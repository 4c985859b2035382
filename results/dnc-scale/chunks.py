"""The DNC's update with and without chunked rematerialisation (``remat_chunk``): its time and
the memory XLA plans for it, at the paper's sizes (W = 64, R = 4, LSTM 256, dense link).

    python results/dnc-scale/chunks.py > results/dnc-scale/chunks.json
"""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
from flax import nnx

from diffmem import tasks
from diffmem.bench import peak_bytes
from diffmem.config import resolve
from diffmem.models import build_model
from diffmem.training.optim import make_optimizer
from diffmem.training.state import TrainState
from diffmem.training.step import compile_step, make_train_step
from diffmem.training.summary import machine_description

SIZES = dict(memory_width=64, read_heads=4, controller_size=256, eval_memory_rows=None,
             content_masking=False, deallocation=False, link_sharpness=False)


def measure(rows: int, batch: int, chunk, seconds: float = 5.0) -> dict:
    config = resolve("copy", "dnc").replace(model=dict(SIZES, memory_rows=rows),
                                            train={"batch_size": batch})
    model = build_model(config, remat_chunk=chunk)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = make_optimizer(config.train)
    state = TrainState(params, tx.init(params), jnp.zeros((), jnp.int32))
    step = make_train_step(graphdef, rest, tasks.get("copy"), tx, batch, length=20)
    compiled = compile_step(step, state, jax.random.key(0), batch_size=batch)
    state, metrics = compiled(state, jax.random.key(0))  # warm-up
    jax.block_until_ready(metrics)
    updates, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        state, metrics = compiled(state, jax.random.key(0))
        jax.block_until_ready(metrics)
        updates += 1
    elapsed = time.perf_counter() - start
    return {"memory_rows": rows, "batch_size": batch, "remat_chunk": chunk,
            "update_ms": 1000 * elapsed / updates, "peak_bytes": peak_bytes(compiled),
            "device": machine_description()}


if __name__ == "__main__":
    rows = [measure(n, b, chunk) for n, b in ((256, 1), (256, 16), (1024, 16))
            for chunk in (None, "auto")]
    print(json.dumps(rows, indent=2))
