"""Training throughput: the training loop with everything else removed.

Measures the jit-compiled ``train_step`` (sample a batch, forward over the sequence, backward,
optimiser update) of a model (by default the NTM with an LSTM controller) with its copy settings
on copy sequences of one fixed length, after compiling it, at several batch sizes (and memory
sizes), with the memory XLA plans for the compiled update.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from diffmem import tasks
from diffmem.config import Config, resolve, validate
from diffmem.machine import compiler_options
from diffmem.models import build_model, count_parameters
from diffmem.training import population
from diffmem.training.optim import make_optimizer
from diffmem.training.state import TrainState
from diffmem.training.step import compile_step, data_key, make_train_step
from diffmem.training.summary import machine_description


def benchmark(
    batch_sizes: list[int], seconds: float = 10.0, length: int = 20, config: Config | None = None,
    populations: list[int] | None = None, memory_rows: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Sequences per second of training at each batch size (and population size, and number
    of memory rows), with compile time apart.

    Each measurement runs whole steps for at least ``seconds`` after one untimed warm-up step.
    ``config`` chooses the model and its optimiser (default: ``resolve("copy", "ntm-lstm")``).
    With ``populations``, each row trains that many members of seeds 0, 1, ... in one compiled
    update (``diffmem.training.population``), and its speed counts the sequences of all
    members; without, one model by the single-run update. With ``memory_rows``, a row for each
    number of rows N (``model.memory_rows``; the model is trained, not evaluated, so
    ``eval_memory_rows`` is dropped).

    Each row's ``step_ms`` is an update's time over its time steps (forward and backward per
    step, the batch's sampling and the optimiser included), ``peak_bytes`` the memory XLA
    plans for the compiled update: its arguments, outputs and temporaries, and
    ``resident_peak_bytes`` the process's resident peak when the row is done (it only grows
    from row to row, so give the sizes in increasing order).
    """
    config = config or resolve("copy", "ntm-lstm")
    rows = []
    for n in memory_rows or [None]:
        c = config if n is None else config.replace(
            model={"memory_rows": n, "eval_memory_rows": None})
        rows += _rows(batch_sizes, seconds, length, validate(c), populations)
    return rows


def _rows(batch_sizes: list[int], seconds: float, length: int, config: Config,
          populations: list[int] | None) -> list[dict[str, Any]]:
    task = tasks.get(config.task)
    m = config.model
    rows = []
    for members in populations or [None]:
        for batch_size in batch_sizes:
            c = config.replace(train={"batch_size": batch_size})
            if members is None:
                model = build_model(c)
                graphdef, params, rest = nnx.split(model, nnx.Param, ...)
                tx = make_optimizer(c.train)
                state = TrainState(params, tx.init(params), jnp.zeros((), jnp.int32))
                step = make_train_step(graphdef, rest, task, tx, batch_size, length=length)
                args = (state, jax.random.key(0))
                per_update = batch_size
            else:
                model, graphdef, rest, args = _population(c, task, members)
                step = population.make_population_step(graphdef, rest, task, c.train, members,
                                                       length=length)
                per_update = batch_size * members
            start = time.perf_counter()
            compiled = compile_step(step, *args, batch_size=batch_size, members=members or 1)
            compile_seconds = time.perf_counter() - start
            steps, elapsed = _time(compiled, args, seconds)
            time_steps = task.max_steps(length=length)
            rows.append({
                "model": m.kind,
                "memory_rows": m.memory_rows,
                "memory_width": m.memory_width,
                "read_heads": m.read_heads,
                "controller_size": m.controller_size,
                **({"link_topk": model.cell.link_topk} if m.kind in ("dnc", "sdnc") else {}),
                **({"read_topk": m.read_topk} if m.kind in ("sam", "sdnc") else {}),
                **({} if members is None else {"population": members}),
                "batch_size": batch_size,
                "sequence_length": length,
                "time_steps": time_steps,
                "sequences_per_second": steps * per_update / elapsed,
                "updates_per_second": steps / elapsed,
                "step_ms": 1000.0 * elapsed / steps / time_steps,
                "peak_bytes": peak_bytes(compiled),
                "resident_peak_bytes": resident_peak_bytes(),
                "compile_seconds": compile_seconds,
                "ynn_fusions": not compiler_options(batch_size, members or 1),
                "parameters": count_parameters(model),
                "device": machine_description(),
            })
    return rows


def peak_bytes(compiled) -> int:
    """The memory XLA plans for ``compiled`` (a compiled program): its arguments, outputs and
    temporaries less what outputs share with arguments, or XLA's own peak where that is larger
    (the CPU backend's leaves the temporaries out)."""
    stats = compiled.memory_analysis()
    planned = (stats.argument_size_in_bytes + stats.output_size_in_bytes
               + stats.temp_size_in_bytes - stats.alias_size_in_bytes)
    return int(max(planned, getattr(stats, "peak_memory_in_bytes", 0)))


def resident_peak_bytes() -> int:
    """The most memory this process has held resident so far (Linux and macOS), its
    imports, compilations and earlier rows included."""
    import resource  # POSIX only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes there, KiB here


def _population(config: Config, task, members: int):
    """A model, and the arguments of a population step of ``members`` seeds 0, 1, ..."""
    states = []
    for seed in range(members):
        model = build_model(config, seed)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        tx = make_optimizer(config.train)
        states.append(TrainState(params, tx.init(params), jnp.zeros((), jnp.int32),
                                 jnp.zeros((), jnp.int32)))
    keys = jnp.stack([data_key(seed) for seed in range(members)])
    lrs = jnp.full((members,), config.train.lr, jnp.float32)
    active = jnp.ones((members,), bool)
    return model, graphdef, rest, (population.stack(states), keys, lrs, active)


def _time(compiled, args, seconds: float) -> tuple[int, float]:
    state, *rest = args
    state, m = compiled(state, *rest)  # warm-up
    jax.block_until_ready(m)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        state, m = compiled(state, *rest)
        jax.block_until_ready(m)  # time whole steps, not just their dispatch
        steps += 1
    return steps, time.perf_counter() - start
