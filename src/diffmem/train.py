"""Training and evaluation as plain functions that a notebook can import.

``train_and_evaluate(config, run_dir)`` reads top to bottom: set up (task, model, optimiser,
the loop's state, fresh or resumed), compile, loop, finish. The loop's steps are functions of
their own: ``train_loop`` (updates until a budget ends the run), ``log_point`` (validate, log,
checkpoint), ``after_nonfinite`` (roll back or stop), ``interruptible`` (stop cleanly on
Ctrl-C or SIGTERM) and ``summarise``. The loop's state and checkpoints are in
``diffmem.resume``, the run directory's files in ``diffmem.rundir``.

One jit-compiled ``train_step`` draws a batch, runs the model over the sequence,
backpropagates and updates the parameters. Batches are a pure function of (seed, step), so a
resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import shlex
import time
import zlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from diffmem import losses, programs, rundir, tasks
from diffmem.config import (
    RESUMABLE_TRAIN_FIELDS,
    Config,
    TrainConfig,
    paper_parameters,
    validate,
)
from diffmem.models import build_model, count_parameters, for_evaluation
from diffmem.resume import (
    FirstTarget,
    GracefulStop,
    LoopState,
    StopRequested,
    TrainState,
    resume_run,
    save_best,
    save_checkpoint,
    stack_pending,
    start_run,
)
from diffmem.tasks import Batch, Task

# The validation and evaluation sets are seeded independently of the training seed, so that
# every run is judged on the same sequences.
VALIDATION_SEED = 2014
EVALUATION_SEED = 1410
EVAL_BATCH = 256


def make_optimizer(t: TrainConfig, lr: float | jax.Array | None = None
                   ) -> optax.GradientTransformation:
    """Gradient clipping followed by Adam or by RMSProp in the form of Graves (2013).

    ``lr`` (default ``t.lr``) may be a traced array: a population's members each train at
    their own rate inside one compiled update (``diffmem.population``)."""
    lr = t.lr if lr is None else lr
    if t.grad_clip_mode == "norm":
        clip = optax.clip_by_global_norm(t.grad_clip)
    else:
        clip = optax.clip(t.grad_clip)  # elementwise, as in the paper
    rate = _schedule(t, lr)
    if t.optimizer == "adam":
        opt = optax.adam(rate)
    else:
        # Centred RMSProp with momentum; epsilon inside the square root (Graves 2013, eq. 38-41).
        opt = optax.rmsprop(rate, decay=0.95, eps=1e-4, centered=True, momentum=0.9)
    if t.lr_plateau_factor is None:
        return optax.chain(clip, opt)
    # Scales the updates, that is the rate, from the training loss that each update passes
    # (``value``), averaged over the updates of one eval_every stretch. A stretch that waits
    # out a reduction (cooldown) does not count toward the next one.
    plateau = optax.contrib.reduce_on_plateau(
        factor=t.lr_plateau_factor, patience=t.lr_plateau_patience,
        cooldown=t.lr_plateau_patience, accumulation_size=max(1, t.eval_every // t.batch_size),
        min_scale=plateau_floor(t, lr))
    return optax.chain(clip, opt, plateau)


def plateau_floor(t: TrainConfig, lr: float | jax.Array) -> float | jax.Array:
    """The least scale of the plateau rule at rate ``lr``: the rate goes no lower than
    lr_min."""
    least = jnp.minimum if isinstance(lr, jax.Array) else min
    return least(1.0, t.lr_min / lr)


def _schedule(t: TrainConfig, lr: float | jax.Array | None = None) -> float | optax.Schedule:
    lr = t.lr if lr is None else lr
    schedule = lr
    if t.lr_half_life is not None:
        least = jnp.minimum if isinstance(lr, jax.Array) else min
        # Halve the rate every lr_half_life sequences (counted in updates of batch_size).
        schedule = optax.exponential_decay(
            lr, transition_steps=max(1, t.lr_half_life // t.batch_size), decay_rate=0.5,
            end_value=least(lr, t.lr_min),
        )
    if not t.lr_warmup:
        return schedule
    warmup = max(1, t.lr_warmup // t.batch_size)  # in updates
    rest = schedule if callable(schedule) else optax.constant_schedule(schedule)
    # Update i of the warm-up (from 0) at lr * (i + 1) / warmup; the decay counts from its end.
    return optax.join_schedules(
        [optax.linear_schedule(lr / warmup, lr, max(1, warmup - 1)), rest], boundaries=[warmup])


def learning_rate(t: TrainConfig, opt_state: Any, step: int) -> float:
    """The rate of the update after ``step`` updates since the optimiser's start: the
    schedule's, times the plateau scale. A log point records the rate its parameters were
    trained at last, also where a restart follows it."""
    schedule = _schedule(t)
    lr = float(schedule(step)) if callable(schedule) else schedule
    if t.lr_plateau_factor is not None:
        lr *= float(opt_state[-1].scale)  # the chain's last state: reduce_on_plateau's
    return lr


def _forward(graphdef, rest, params, batch: Batch) -> jax.Array:
    model = nnx.merge(graphdef, params, rest)
    logits, _ = model(batch.inputs)
    return logits


def make_update(graphdef, rest, task: Task, batch_size: int, curriculum: int = 0,
                **sizes: Any) -> Callable:
    """The update ``update(state, data_key, tx) -> (state, metrics)``, not compiled: sample
    batch ``state.step``, forward, backward, optimiser step. ``make_train_step`` compiles it
    for one run, ``diffmem.population`` for many at once.

    The batch is a function of ``data_key`` (see ``data_key``), the step and the state's batch
    stream only. ``sizes`` are passed to ``task.sample`` (none: the training distribution);
    with ``curriculum`` sequences (TrainConfig.curriculum), the training range's upper limits
    rise with the sequences trained until they reach the task's after that many.

    An update whose loss or gradients are not finite leaves the parameters and optimiser
    state unchanged and reports ``finite == False`` (and which of the two: ``loss_finite``,
    ``grads_finite``).
    """

    def loss_fn(params, batch):
        logits = _forward(graphdef, rest, params, batch)
        return losses.loss(logits, batch.targets, batch.mask), logits

    def update(state: TrainState, data_key: jax.Array, tx: optax.GradientTransformation):
        key = batch_key(data_key, state.step, state.stream)
        if curriculum:
            seen = (state.step + 1) * batch_size  # including this batch
            sizes_now = dict(sizes, difficulty=jnp.minimum(1.0, seen / curriculum))
        else:
            sizes_now = sizes
        batch = task.sample(key, batch_size, **sizes_now)
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch)
        grad_norm = optax.tree.norm(grads)
        loss_finite, grads_finite = jnp.isfinite(loss), jnp.isfinite(grad_norm)
        finite = loss_finite & grads_finite
        updates, opt_state = tx.update(grads, state.opt_state, state.params, value=loss)
        params = optax.apply_updates(state.params, updates)
        new_state = TrainState(keep(finite, params, state.params),
                               keep(finite, opt_state, state.opt_state),
                               state.step + 1, state.stream)
        m = losses.metrics(logits, batch.targets, batch.mask)
        m.update(grad_norm=grad_norm, finite=finite, loss_finite=loss_finite,
                 grads_finite=grads_finite)
        return new_state, m

    return update


def keep(condition: jax.Array, new: Any, old: Any) -> Any:
    """``new`` where ``condition`` holds, else ``old``, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


def make_train_step(
    graphdef, rest, task: Task, tx: optax.GradientTransformation, batch_size: int,
    curriculum: int = 0, **sizes: Any,
) -> Callable[[TrainState, jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    """The jit-compiled update ``train_step(state, data_key)`` of one run (``make_update``).
    The key is an argument, not a constant, so that one compiled program serves every seed."""
    update = make_update(graphdef, rest, task, batch_size, curriculum, **sizes)
    return jax.jit(lambda state, data_key: update(state, data_key, tx))


# XLA's CPU backend hands memory-sized operations to YNNPACK fusions, which are slow at the
# shapes of a batched memory model: without them populations, and one model from batch 32,
# train faster, while at batch 16 they win (experiments/bench_fusions.py measures both). An
# option of the compilation, so a user's XLA_FLAGS stay theirs.
YNN_OFF = {"xla_cpu_experimental_ynn_fusion_type": ""}
YNN_OFF_FROM = 32  # the batch size from which one model's update compiles without them


def compiler_options(batch_size: int, members: int = 1) -> dict[str, str | bool]:
    """The options to compile an update of ``members`` models at ``batch_size`` with."""
    if jax.default_backend() != "cpu" or (members == 1 and batch_size < YNN_OFF_FROM):
        return {}
    if members == 1:
        return dict(YNN_OFF)
    # A population's update is many small operations, which lose more to handing work
    # between Eigen's threads than they gain (docs/throughput.md).
    return {**YNN_OFF, "xla_cpu_multi_thread_eigen": False}


def compile_step(step: Callable, *args: Any, batch_size: int, members: int = 1) -> Callable:
    """``step`` (jit-compiled) compiled for ``args`` with ``compiler_options``."""
    return step.lower(*args).compile(compiler_options(batch_size, members))


# Training fields that do not shape the compiled update: the budgets, logging, what follows
# a non-finite step or a plateau, the validation sets' sizes, and the seed (the data key and the
# parameters are the update's arguments).
_NOT_IN_UPDATE = (*RESUMABLE_TRAIN_FIELDS, "seed", "val_size", "eval_count",
                  "generalisation_val_size", "restart_after", "restart_above",
                  "collapse_above")


def update_settings(t: TrainConfig) -> TrainConfig:
    """``t`` with the fields that do not shape the compiled update at their defaults: runs
    with equal settings (and equal models and tasks) share one compiled update."""
    defaults = TrainConfig()
    return dataclasses.replace(t, **{f: getattr(defaults, f) for f in _NOT_IN_UPDATE})


def update_key(kind: str, config: Config, graphdef, rest, task: Task, state: Any) -> Hashable:
    """The key (``diffmem.programs``) of a compiled update of ``kind`` for ``config``'s model
    on ``task``, taking ``state``: all that shapes it, for single runs and populations alike."""
    return (kind, config.model, graphdef, programs.fingerprint(rest), task.identity(),
            update_settings(config.train), programs.shapes(state))


def make_eval_step(graphdef, rest) -> Callable[[nnx.State, Batch], dict[str, jax.Array]]:
    """Jit-compiled metrics of the model on one batch (summed over its sequences); one
    function per model structure and constants in the process (``diffmem.programs``), so
    that its compiled programs serve every run and evaluation of such a model."""
    return programs.get(("eval step", graphdef, programs.fingerprint(rest)),
                        lambda: _make_eval_step(graphdef, rest))


def _make_eval_step(graphdef, rest) -> Callable[[nnx.State, Batch], dict[str, jax.Array]]:
    @jax.jit
    def eval_step(params, batch: Batch):
        logits = _forward(graphdef, rest, params, batch)
        return {
            "nats": jnp.sum(losses.sequence_cross_entropy(logits, batch.targets, batch.mask)),
            "bit_errors": jnp.sum(losses.sequence_bit_errors(logits, batch.targets, batch.mask)),
            "output_bits": jnp.sum(batch.mask) * batch.targets.shape[-1],
            "sequences": jnp.asarray(batch.mask.shape[0], jnp.float32),
        }

    return eval_step


def fixed_batches(task: Task, count: int, seed: int, **sizes: Any) -> list[Batch]:
    """``count`` sequences drawn with a fixed seed, in batches of at most EVAL_BATCH."""
    key = jax.random.key(seed)
    out, done = [], 0
    while done < count:
        n = min(EVAL_BATCH, count - done)
        out.append(task.sample_compiled(jax.random.fold_in(key, done), n, **sizes))
        done += n
    return out


def evaluate_batches(eval_step, params, batches: list[Batch]) -> dict[str, float]:
    """Bits and bit errors per sequence, and the fraction of wrong bits, over ``batches``."""
    totals: dict[str, float] = {}
    for batch in batches:
        for k, v in jax.device_get(eval_step(params, batch)).items():
            totals[k] = totals.get(k, 0.0) + float(v)
    n = totals["sequences"]
    return {
        "bits": totals["nats"] / losses.LN2 / n,
        "bit_errors": totals["bit_errors"] / n,
        "wrong_bit_fraction": totals["bit_errors"] / max(totals["output_bits"], 1.0),
        "sequences": int(n),
    }


def optimal_bits(task: Task, batches: list[Batch]) -> float | None:
    """The task's optimal predictor's bits per sequence over ``batches`` (None if it has none)."""
    per_batch = [task.optimal_bits(b) for b in batches]
    if any(p is None for p in per_batch):
        return None
    return float(sum(float(jnp.sum(p)) for p in per_batch) / sum(b.mask.shape[0] for b in batches))


def evaluate(
    model: nnx.Module, task: Task, sizes: list[dict[str, Any]], count: int = 256,
    seed: int = EVALUATION_SEED, eval_step: Callable | None = None,
) -> list[dict[str, Any]]:
    """Metrics of ``model`` at each size, each on its own fixed, seeded set of ``count`` sequences.

    The set for a size depends only on the seed and the size, not on which other sizes are
    evaluated, so figures from different commands agree. ``eval_step`` (``make_eval_step`` of
    a model of the same structure and non-parameter variables) saves compiling another.
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    eval_step = eval_step or make_eval_step(graphdef, rest)
    sets = [fixed_batches(task, count, size_seed(seed, size), **size) for size in sizes]
    # Right-pad every set to the longest T (mask 0): outputs at real steps do not depend on
    # later steps, and one compiled function then serves all sizes.
    T = max(b.inputs.shape[1] for batches in sets for b in batches)
    rows = []
    for size, batches in zip(sizes, sets):
        result = evaluate_batches(eval_step, params, [_pad_time(b, T) for b in batches])
        optimum = optimal_bits(task, batches)
        if optimum is not None:
            result["optimal_bits"] = optimum
        rows.append({"size": size, "label": task.describe_size(size), **result})
    return rows


def size_seed(seed: int, size: dict[str, Any]) -> int:
    """The seed of a fixed set at ``size``: ``seed`` and the size alone fix it."""
    return seed + zlib.crc32(json.dumps(size, sort_keys=True).encode())


def _pad_time(batch: Batch, T: int) -> Batch:
    pad = T - batch.inputs.shape[1]
    return Batch(*(jnp.pad(a, [(0, 0), (0, pad)] + [(0, 0)] * (a.ndim - 2)) for a in batch))


def machine_description() -> str:
    devices = jax.devices()
    kind = devices[0].device_kind if devices else "unknown"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"JAX {jax.__version__} on {devices[0].platform} ({kind})")


class Run(NamedTuple):
    """What ``train_and_evaluate`` returns."""

    model: nnx.Module  # the trained model
    summary: dict[str, Any]


class Validation(NamedTuple):
    """The fixed validation set and what a run must score on it."""

    batches: list[Batch]
    optimum: float | None  # the task's optimal predictor's bits per sequence, if it has one
    target: float  # bits per sequence to get below
    check: Check | None = None  # the generalisation check, if the task and config have one


class Check(NamedTuple):
    """The generalisation check: fixed sets at sizes beyond the training range, validated at
    every log point on the memory the model is evaluated with (``Task.generalisation_check``)."""

    sets: list[tuple[str, float, list[Batch]]]  # (size label, largest wrong fraction, batches)
    eval_step: Callable


def make_check(task: Task, config: Config, model: nnx.Module) -> Check | None:
    """The run's generalisation check, or None where the task has none or
    ``train.generalisation_val_size`` is 0. Its sets are drawn from the validation seed, apart
    from the final evaluation's, so that choosing a checkpoint by them does not tune to those."""
    count = config.train.generalisation_val_size
    if count == 0 or not task.generalisation_check:
        return None
    graphdef, _, rest = nnx.split(for_evaluation(model, config), nnx.Param, ...)
    # Each size at its own length (a compiled program each), not padded to the longest: the
    # short sizes then cost what they are, and counting more of them is cheap.
    sets = [(task.describe_size(size), tolerance,
             fixed_batches(task, count, size_seed(VALIDATION_SEED, size), **size))
            for size, tolerance in task.generalisation_check]
    return Check(sets, make_eval_step(graphdef, rest))


def run_check(check: Check, params: nnx.State) -> list[dict[str, Any]]:
    """The check's figures at each size, and whether the size passed."""
    rows = []
    for label, tolerance, batches in check.sets:
        r = evaluate_batches(check.eval_step, params, batches)
        rows.append({"label": label, "bits": r["bits"], "wrong_bit_fraction":
                     r["wrong_bit_fraction"], "tolerance": tolerance,
                     "passed": bool(r["wrong_bit_fraction"] <= tolerance)})
    return rows


def rank(target_met: bool, check: list[dict[str, Any]], val_bits: float) -> list[float]:
    """A log point's place in the choice of the best checkpoint, smaller being better,
    compared in order: the validation target met; the check passed; the fraction of wrong
    bits summed over the check's sizes; the validation bits. Before the target is met only
    the validation bits count: beyond the training range the figures mean little yet."""
    worst = 1e30  # for a non-finite figure; JSON has no infinity
    finite = lambda x: x if x is not None and math.isfinite(x) else worst  # noqa: E731
    if not target_met:
        return [1.0, 0.0, 0.0, finite(val_bits)]
    return [0.0, float(not all(r["passed"] for r in check)),
            sum(finite(r["wrong_bit_fraction"]) for r in check), finite(val_bits)]


class Clock(NamedTuple):
    """The run's wall time: this attempt's, plus ``before`` seconds of earlier attempts."""

    started: float  # time.perf_counter() when this attempt began
    before: float = 0.0

    def __call__(self) -> float:
        return self.before + time.perf_counter() - self.started


@dataclass(frozen=True)
class Session:
    """What the loop's helpers read and never change: one attempt at a run."""

    config: Config
    run_dir: Path
    rest: nnx.State  # the model's variables other than parameters
    data_key: jax.Array  # the key of every training batch (see ``data_key``)
    eval_step: Callable
    validation: Validation
    reporter: Reporter
    clock: Clock
    tensorboard: Any = None  # a tensorboardX SummaryWriter, or None


def train_and_evaluate(
    config: Config,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    reporter: Reporter | None = None,
) -> Run:
    """Train ``config`` in ``run_dir`` until a budget or the early-stop target, then evaluate.

    Writes ``config.json``, ``metrics.jsonl`` (one object per validation point), TensorBoard
    event files under ``tensorboard/`` (unless ``config.train.tensorboard`` is False),
    ``checkpoint.safetensors`` (after every validation point and at the end),
    ``best.safetensors`` (the model of the best validation point so far, see ``rank``) and
    ``summary.json`` (see ``diffmem.rundir``). The returned model and the summary's figures
    are the best checkpoint's. With ``resume=True`` continues the run saved in ``run_dir``
    exactly.
    """
    started = time.perf_counter()
    config = validate(config)
    t = config.train
    run_dir = Path(run_dir)

    # Task, model, optimiser, and the loop's state: fresh or from the run's checkpoint.
    task = tasks.get(config.task)
    model = build_model(config)
    tx = make_optimizer(t)
    loop = resume_run(run_dir, config, model, tx) if resume else start_run(run_dir, model, tx)
    rundir.write_config(run_dir, config)
    graphdef, _, rest = nnx.split(model, nnx.Param, ...)
    if resume:  # the best model as the checkpoint has it, should a kill have left it behind
        save_best(run_dir, config, loop, rest)
    eval_step = make_eval_step(graphdef, rest)
    batches = fixed_batches(task, t.val_size, VALIDATION_SEED)
    optimum = optimal_bits(task, batches)
    validation = Validation(batches, optimum, task.target(optimum),
                            make_check(task, config, model))

    # Compile once, up front, so that the progress display's speeds are honest.
    compile_start = time.perf_counter()
    key = data_key(t.seed)
    train_step = programs.get(
        update_key("train step", config, graphdef, rest, task, loop.state),
        lambda: compile_step(make_train_step(graphdef, rest, task, tx, t.batch_size,
                                             t.curriculum),
                             loop.state, key, batch_size=t.batch_size))
    compile_seconds = time.perf_counter() - compile_start

    s = Session(config, run_dir, rest, key, eval_step, validation,
                reporter or Reporter(), Clock(started, loop.seconds),
                rundir.tensorboard_writer(run_dir, config, loop.sequences if resume else None))
    n_params = count_parameters(model)
    s.reporter.start(config, n_params, loop.sequences, compile_seconds, seconds=s.clock())
    if optimum is not None:
        s.reporter.message(
            f"The optimal predictor scores {optimum:.2f} bits per sequence on the "
            f"{t.val_size:,} validation sequences; the target is {validation.target:.2f}.")
    loop.log_time = time.perf_counter()
    loop.log_sequences = loop.sequences - len(loop.pending) * t.batch_size
    try:
        status = train_loop(loop, s, train_step)
    finally:
        if s.tensorboard is not None:
            s.tensorboard.close()

    _save(s, loop, status)
    # The best log point's model is the run's result (the last one's without a log point).
    best = loop.state.params if loop.best_params is None else loop.best_params
    model = nnx.merge(graphdef, best, rest)
    summary = summarise(loop, s, model, task, status, n_params, compile_seconds)
    s.reporter.summary(summary)
    return Run(model, summary)


def data_key(seed: int) -> jax.Array:
    """The key every training batch is drawn from (with the step and the batch stream)."""
    return jax.random.fold_in(jax.random.key(seed), 1)


def batch_key(data_key: jax.Array, step: int | jax.Array, stream: int | jax.Array = 0) -> jax.Array:
    """The key of training batch ``step`` in batch stream ``stream``, from ``data_key``."""
    key = jax.random.fold_in(data_key, step)
    # Stream 0 keeps the batches of runs without rollbacks as they always were.
    return jax.lax.cond(stream > 0, lambda k: jax.random.fold_in(k, stream), lambda k: k, key)


def train_loop(loop: LoopState, s: Session, train_step: Callable) -> str:
    """Update until a budget, the early-stop target or a non-finite step ends the run; return
    why it ended (the summary's ``status``)."""
    t = s.config.train
    deadline = math.inf if t.minutes is None else t.minutes * 60.0
    # A resumed run that had already stopped early, or spent its minutes, stops again at once
    # (it goes on if those budgets were raised).
    stop = stop_reason(t, loop, loop.seconds >= deadline)
    with interruptible(loop, s) as signals:
        while stop is None and loop.sequences < t.sequences:
            if signals.received:
                raise StopRequested(signals.received)
            loop.state, metrics = train_step(loop.state, s.data_key)
            loop.pending.append(metrics)
            loop.sequences += t.batch_size
            s.reporter.advance(t.batch_size)
            # Log points fall on multiples of eval_every, so a resumed run logs where an
            # uninterrupted one would.
            at_log = loop.on_log_grid(t.eval_every)
            out_of_time = s.clock() >= deadline
            if at_log or out_of_time or loop.sequences >= t.sequences:
                stop = log_point(loop, s, out_of_time)
    return stop or "budget: sequences"


def log_point(loop: LoopState, s: Session, out_of_time: bool) -> str | None:
    """Validate, log and checkpoint; return why the run stops here, or None to go on."""
    t = s.config.train
    metrics = stack_pending(loop.pending)
    now = time.perf_counter()
    speed = (loop.sequences - loop.log_sequences) / max(now - loop.log_time, 1e-9)
    loop.seconds = s.clock()
    if not metrics["finite"].all():
        return after_nonfinite(loop, s, metrics, now)
    # A point on the eval_every grid, not one where a budget ended between two of them.
    on_grid = loop.on_log_grid(t.eval_every)

    loop.validation = evaluate_batches(s.eval_step, loop.state.params, s.validation.batches)
    check = [] if s.validation.check is None else run_check(s.validation.check,
                                                             loop.state.params)
    record = rundir.finite_or_none({
        "sequences": loop.sequences,
        "step": int(loop.state.step),
        "loss": float(np.mean(metrics["loss"])),
        "bits": float(np.mean(metrics["bits"])),
        "bit_errors": float(np.mean(metrics["bit_errors"])),
        "val_bits": loop.validation["bits"],
        "val_bit_errors": loop.validation["bit_errors"],
        "lr": learning_rate(t, loop.state.opt_state, int(loop.state.step) - loop.started[1]),
        "sequences_per_second": speed,
        "wall_seconds": loop.seconds,
        **({"check": {r["label"]: r["wrong_bit_fraction"] for r in check}} if check else {}),
    })
    rundir.append_metrics(s.run_dir, record)
    s.reporter.log(record)
    if s.tensorboard is not None:
        rundir.log_scalars(s.tensorboard, record, float(np.mean(metrics["grad_norm"])))
    loop.pending.clear()
    loop.log_time, loop.log_sequences = now, loop.sequences

    target_met = loop.validation["bits"] < s.validation.target
    loop.streak = loop.streak + 1 if target_met else 0
    passed = all(r["passed"] for r in check)
    loop.check_streak = loop.check_streak + 1 if passed else 0
    if target_met and loop.first_target is None:
        loop.first_target = FirstTarget(loop.sequences, loop.seconds)
    place = rank(target_met, check, loop.validation["bits"])
    improved = loop.best is None or place < loop.best["rank"]
    if improved:
        loop.best_params = loop.state.params
        loop.best = rundir.finite_or_none({
            "sequences": loop.sequences, "seconds": loop.seconds, "step": int(loop.state.step),
            "rank": place, "validation": loop.validation, "check": check,
            "passed": passed})
    # Only on the grid, where an uninterrupted run has its log points too: a run resumed with
    # a raised budget then restarts where one would have, and one stopped by its minutes does
    # not end on a restart that never trains.
    if on_grid and restart_due(t, loop):
        restart(loop, s)
    elif on_grid and collapse_due(t, loop, improved):
        go_back_to_best(loop, s)
    _save(s, loop, "running")
    if improved:  # after the last checkpoint, which holds the best parameters too
        save_best(s.run_dir, s.config, loop, s.rest)
    loop.rollback = loop.mark()
    return stop_reason(t, loop, out_of_time)


def restart_due(t: TrainConfig, loop: LoopState) -> bool:
    """Whether the run starts again from fresh weights at this log point: restarts on, the
    target never met, ``restart_after`` sequences since the last start, and validation still
    above ``restart_above`` bits (or not finite)."""
    return (t.restart_after > 0 and loop.first_target is None
            and loop.sequences - loop.started[0] >= t.restart_after
            and not loop.validation["bits"] < t.restart_above)


def collapse_due(t: TrainConfig, loop: LoopState, improved: bool) -> bool:
    """Whether validation at this log point has fallen more than ``collapse_above`` bits per
    sequence behind the best log point's (or is not finite). A best log point from before
    the last restart does not count: going back to it would undo the restart."""
    if t.collapse_above is None or improved or loop.best_params is None:
        return False
    best = loop.best["validation"]["bits"]
    since_start = not loop.restarts or loop.best["sequences"] > loop.started[0]
    return (since_start and best is not None
            and not loop.validation["bits"] <= best + t.collapse_above)


def go_back_to_best(loop: LoopState, s: Session) -> None:
    """Put the best log point's parameters in place of the collapsed ones, and cut the plateau
    rule's rate by its factor (down to lr_min) as a plateau would, with its cooldown. The
    optimiser's moments, the update count and the batches go on. The streaks of validation
    points below the target and passing the check start again, as they were the collapsed
    parameters'."""
    t = s.config.train
    bits, best = loop.validation["bits"], loop.best
    plateau = loop.state.opt_state[-1]  # the chain's last state: reduce_on_plateau's
    scale = jnp.maximum(plateau.scale * t.lr_plateau_factor, plateau_floor(t, t.lr)
                        ).astype(plateau.scale.dtype)
    opt_state = (*loop.state.opt_state[:-1], plateau._replace(
        scale=scale, plateau_count=jnp.zeros_like(plateau.plateau_count),
        cooldown_count=jnp.asarray(t.lr_plateau_patience, plateau.cooldown_count.dtype)))
    loop.collapses.append({"sequences": loop.sequences, "step": int(loop.state.step),
                           "val_bits": bits if math.isfinite(bits) else None,
                           "to_sequences": best["sequences"],
                           "to_val_bits": best["validation"]["bits"]})
    loop.state = loop.state._replace(params=loop.best_params, opt_state=opt_state)
    loop.streak = loop.check_streak = 0
    s.reporter.message(
        f"[yellow]Validation at {bits:.2f} bits per sequence, more than "
        f"train.collapse_above={t.collapse_above:g} above the best "
        f"({best['validation']['bits']:.2f} at {best['sequences']:,} sequences): going on "
        f"from the best model at {float(scale) * t.lr:.3g}, the rate cut by "
        f"train.lr_plateau_factor={t.lr_plateau_factor:g}.")


def restart_key(seed: int, restart: int) -> jax.Array:
    """The key of restart ``restart``'s initial weights (1, 2, ...), one per seed and
    restart."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 2), restart)


def restart(loop: LoopState, s: Session) -> None:
    """Replace the parameters by a fresh initialisation and the optimiser's state (its rate
    schedule with it) by a fresh one; batches go on from the update reached, and so does the
    curriculum (TrainConfig.curriculum), which counts every update. Variables other than
    parameters (a random initial memory) stay. The best log point so far stays the best
    until a later one beats it."""
    t = s.config.train
    n, since = len(loop.restarts) + 1, loop.sequences - loop.started[0]
    _, params, _ = nnx.split(build_model(s.config, seed=restart_key(t.seed, n)), nnx.Param, ...)
    bits = loop.validation["bits"]
    loop.restarts.append({"sequences": loop.sequences, "step": int(loop.state.step),
                          "val_bits": bits if math.isfinite(bits) else None})
    loop.state = loop.state._replace(params=params, opt_state=make_optimizer(t).init(params))
    s.reporter.message(
        f"[yellow]Validation at {bits:.1f} bits per sequence after {since:,} "
        f"sequences, above train.restart_above={t.restart_above:g}: starting again from fresh "
        f"initial weights and rate (restart {n}) at {loop.sequences:,} sequences.")


def after_nonfinite(loop: LoopState, s: Session, metrics: dict[str, np.ndarray],
                    now: float) -> str | None:
    """Record the first non-finite update since the last log point (those updates were
    skipped, so the parameters are finite), then roll back to that log point with fresh
    batches, or, with no rollback left, return why the run stops."""
    t = s.config.train
    bad = np.flatnonzero(~metrics["finite"])
    first = int(loop.state.step) - len(metrics["finite"]) + int(bad[0]) + 1
    quantity = "loss" if not metrics["loss_finite"][bad[0]] else "gradients"
    loop.nonfinite.append({"update": first, "quantity": quantity,
                           "sequences": first * t.batch_size})
    loop.pending.clear()
    if t.on_nonfinite == "rollback" and loop.rollbacks < t.max_rollbacks:
        loop.roll_back()
        loop.log_time, loop.log_sequences = now, loop.sequences
        s.reporter.rewind(loop.sequences)
        s.reporter.message(
            f"[yellow]Non-finite {quantity} at update {first:,} ({bad.size} of the last "
            f"{metrics['finite'].size} updates); rolled back to the checkpoint at "
            f"{loop.sequences:,} sequences and went on with fresh batches (rollback "
            f"{loop.rollbacks} of at most {t.max_rollbacks})."
        )
        _save(s, loop, "running")
        return None
    why = ("train.on_nonfinite is 'stop'" if t.on_nonfinite == "stop" else
           f"the {t.max_rollbacks} rollbacks allowed are spent")
    s.reporter.message(
        f"[red]Non-finite {quantity} at update {first:,}; that update was skipped, so the "
        f"parameters are finite, and training stops ({why})."
    )
    loop.validation = None  # the last validation is of the parameters as they are now
    return f"stopped: non-finite {quantity} at update {first}"


def stop_reason(t: TrainConfig, loop: LoopState, out_of_time: bool) -> str | None:
    """Why a run stops at a log point, or None if it goes on: the validation target met and
    the generalisation check passed at ``patience`` points in a row (with early stopping on),
    or the minutes spent."""
    if t.early_stop and min(loop.streak, loop.check_streak) >= t.patience:
        return "target reached"
    return "budget: minutes" if out_of_time else None


def _save(s: Session, loop: LoopState, status: str, interrupted: bool = False) -> None:
    save_checkpoint(s.run_dir, s.config, loop, s.rest, status, interrupted)


@contextlib.contextmanager
def interruptible(loop: LoopState, s: Session):
    """Stop on a first Ctrl-C or SIGTERM between two updates, saving everything the rest of
    the run needs to go on exactly as an uninterrupted one; say how to resume."""
    signals = GracefulStop()
    resume = f"Continue with: diffmem train --resume {shlex.quote(str(s.run_dir))}"
    try:
        yield signals
    except StopRequested:
        loop.seconds = s.clock()
        _save(s, loop, "interrupted", interrupted=True)
        s.reporter.stop()
        s.reporter.message(f"Interrupted at {loop.sequences:,} sequences; the checkpoint is "
                           f"saved. {resume}")
        raise
    except KeyboardInterrupt:
        # A second Ctrl-C (or one outside the main thread) lands anywhere, perhaps inside the
        # bookkeeping; the checkpoint of the last log point stays, and a resumed run redoes the
        # updates since, exactly.
        s.reporter.stop()
        s.reporter.message(f"Interrupted; the checkpoint at {loop.rollback.sequences:,} "
                           f"sequences stays. {resume}")
        raise
    finally:
        signals.restore()
        s.reporter.stop()


def summarise(loop: LoopState, s: Session, model: nnx.Module, task: Task, status: str,
              parameters: int, compile_seconds: float, final_eval_step: Callable | None = None,
              **extra: Any) -> dict[str, Any]:
    """The run's outcome, with its evaluation beyond the training range (by
    ``final_eval_step``, see ``evaluate``); written to ``summary.json`` with ``extra``."""
    config, t, best = s.config, s.config.train, loop.best
    # The last parameters' validation: the last log point's, or after a non-finite stop (or
    # with no log point at all) their own.
    last = loop.validation or evaluate_batches(s.eval_step, loop.state.params,
                                               s.validation.batches)
    # ``model`` is the best log point's, whose validation is stored; without one, the last.
    final = last if best is None else best["validation"]
    if s.validation.optimum is not None:
        final = {**final, "optimal_bits": s.validation.optimum}
    summary = rundir.finite_or_none({
        "task": config.task,
        "model": config.model.kind,
        "preset": config.preset,
        "seed": t.seed,
        "lr": t.lr,
        "parameters": parameters,
        "status": status,
        "sequences": loop.sequences,
        "steps": int(loop.state.step),
        "train_seconds": loop.seconds,
        "compile_seconds": compile_seconds,
        "target_bits": s.validation.target,
        "paper_parameters": paper_parameters(config),
        "reached_target": final["bits"] is not None and final["bits"] < s.validation.target,
        "first_below_target": loop.first_target and loop.first_target._asdict(),
        # Where the evaluated model comes from: the best log point (checkpoint.BEST), its
        # generalisation check, and the last log point's validation for comparison.
        "best": best and {k: best[k] for k in ("sequences", "seconds", "step", "check",
                                                "passed")},
        "last_validation": last,
        "nonfinite_events": loop.nonfinite,
        "rollbacks": loop.rollbacks,
        "restarts": loop.restarts,
        "collapses": loop.collapses,
        "validation": final,
        "generalisation": evaluate(for_evaluation(model, config), task, list(task.eval_sizes),
                                   count=t.eval_count, eval_step=final_eval_step),
        "machine": machine_description(),
        "run_dir": str(s.run_dir),
        **extra,
    })
    rundir.write_summary(s.run_dir, summary)
    return summary


class Reporter:
    """Receives progress events from ``train_and_evaluate``; this base class is silent.

    The CLI passes ``diffmem.console.ConsoleReporter`` (a live progress bar on a terminal, a
    plain line per log point otherwise); a notebook may pass its own subclass.
    """

    def start(self, config: Config, parameters: int, sequences: int, compile_seconds: float,
              seconds: float = 0.0) -> None:
        """Training starts at ``sequences`` sequences and ``seconds`` of wall time (both 0
        unless the run is resumed; the time counts toward ``config.train.minutes``)."""

    def advance(self, sequences: int) -> None:
        """One update trained on ``sequences`` more sequences."""

    def log(self, record: dict[str, Any]) -> None:
        """A log point's record, as written to metrics.jsonl."""

    def message(self, text: str) -> None:
        """A line for the user (may hold rich markup such as ``[red]``)."""

    def rewind(self, sequences: int) -> None:
        """Training went back to ``sequences`` (a rollback after a non-finite step)."""

    def stop(self) -> None:
        """Training stopped; may be called more than once."""

    def summary(self, summary: dict[str, Any]) -> None:
        """The run's summary, as written to summary.json."""
