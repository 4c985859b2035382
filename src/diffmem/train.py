"""Training and evaluation as plain functions that a notebook can import.

``train_and_evaluate(config, run_dir)`` reads top to bottom: task, model, optimiser, the fixed
validation set, then the loop. One jit-compiled ``train_step`` draws a batch, runs the model
over the sequence, backpropagates and updates the parameters. Batches are a pure function of
(seed, step), so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import signal
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from diffmem import checkpoint, losses, tasks
from diffmem.config import (RESUMABLE_TRAIN_FIELDS, Config, TrainConfig, paper_parameters,
                            validate)
from diffmem.models import build_model, count_parameters
from diffmem.tasks import Batch, Task

# The validation and evaluation sets are seeded independently of the training seed, so that
# every run is judged on the same sequences.
VALIDATION_SEED = 2014
EVALUATION_SEED = 1410
EVAL_BATCH = 256
TENSORBOARD_DIR = "tensorboard"  # inside the run directory
ROLLBACK_PREFIX = "rollback"  # checkpoint tensors of the rollback point (interrupts only)

def make_optimizer(t: TrainConfig) -> optax.GradientTransformation:
    """Gradient clipping followed by Adam or by RMSProp in the form of Graves (2013)."""
    if t.grad_clip_mode == "norm":
        clip = optax.clip_by_global_norm(t.grad_clip)
    else:
        clip = optax.clip(t.grad_clip)  # elementwise, as in the paper
    lr = _schedule(t)
    if t.optimizer == "adam":
        opt = optax.adam(lr)
    else:
        # Centred RMSProp with momentum; epsilon inside the square root (Graves 2013, eq. 38-41).
        opt = optax.rmsprop(lr, decay=0.95, eps=1e-4, centered=True, momentum=0.9)
    if t.lr_plateau_factor is None:
        return optax.chain(clip, opt)
    # Scales the updates, that is the rate, from the training loss that each update passes
    # (``value``), averaged over the updates of one eval_every stretch. A stretch that waits
    # out a reduction (cooldown) does not count toward the next one.
    plateau = optax.contrib.reduce_on_plateau(
        factor=t.lr_plateau_factor, patience=t.lr_plateau_patience,
        cooldown=t.lr_plateau_patience, accumulation_size=max(1, t.eval_every // t.batch_size),
        min_scale=min(1.0, t.lr_min / t.lr))
    return optax.chain(clip, opt, plateau)


def _schedule(t: TrainConfig) -> float | optax.Schedule:
    if t.lr_half_life is None:
        return t.lr
    # Halve the rate every lr_half_life sequences (counted in updates of batch_size).
    return optax.exponential_decay(
        t.lr, transition_steps=max(1, t.lr_half_life // t.batch_size), decay_rate=0.5,
        end_value=min(t.lr, t.lr_min),
    )


def learning_rate(t: TrainConfig, opt_state: Any, step: int) -> float:
    """The rate of the next update: the schedule's at ``step``, times the plateau scale."""
    schedule = _schedule(t)
    lr = float(schedule(step)) if callable(schedule) else schedule
    if t.lr_plateau_factor is not None:
        lr *= float(opt_state[-1].scale)  # the chain's last state: reduce_on_plateau's
    return lr


class TrainState(NamedTuple):
    params: nnx.State  # the trained variables (nnx.Param)
    opt_state: Any
    step: jax.Array  # () int32, updates done so far
    stream: Any = 0  # () int32, the batch stream: 0 at first, +1 at each rollback


def _forward(graphdef, rest, params, batch: Batch) -> jax.Array:
    model = nnx.merge(graphdef, params, rest)
    logits, _ = model(batch.inputs)
    return logits


def make_train_step(
    graphdef, rest, task: Task, tx: optax.GradientTransformation, batch_size: int, data_key,
    **sizes: Any,
) -> Callable[[TrainState], tuple[TrainState, dict[str, jax.Array]]]:
    """The jit-compiled update: sample batch ``step``, forward, backward, optimiser step.

    The batch is a function of ``data_key``, the step and the state's batch stream only.
    ``sizes`` are passed to ``task.sample`` (none: the training distribution).

    A step whose loss or gradients are not finite leaves the parameters and optimiser state
    unchanged and reports ``finite == False`` (and which of the two: ``loss_finite``,
    ``grads_finite``).
    """

    def loss_fn(params, batch):
        logits = _forward(graphdef, rest, params, batch)
        return losses.loss(logits, batch.targets, batch.mask), logits

    @jax.jit
    def train_step(state: TrainState):
        key = jax.random.fold_in(data_key, state.step)
        # Stream 0 keeps the batches of runs without rollbacks as they always were.
        key = jax.lax.cond(state.stream > 0, lambda k: jax.random.fold_in(k, state.stream),
                           lambda k: k, key)
        batch = task.sample(key, batch_size, **sizes)
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch)
        grad_norm = optax.tree.norm(grads)
        loss_finite, grads_finite = jnp.isfinite(loss), jnp.isfinite(grad_norm)
        finite = loss_finite & grads_finite
        updates, opt_state = tx.update(grads, state.opt_state, state.params, value=loss)
        params = optax.apply_updates(state.params, updates)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)  # noqa: E731
        new_state = TrainState(keep(params, state.params), keep(opt_state, state.opt_state),
                               state.step + 1, state.stream)
        m = losses.metrics(logits, batch.targets, batch.mask)
        m.update(grad_norm=grad_norm, finite=finite, loss_finite=loss_finite,
                 grads_finite=grads_finite)
        return new_state, m

    return train_step


def make_eval_step(graphdef, rest) -> Callable[[nnx.State, Batch], dict[str, jax.Array]]:
    """Jit-compiled metrics of the model on one batch (summed over its sequences)."""

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
    # Compiled once per batch shape: run eagerly, every operation of the sampler would be
    # compiled on its own for each new shape (seconds per validation or evaluation set).
    sample = jax.jit(task.sample, static_argnums=1, static_argnames=tuple(sizes))
    key = jax.random.key(seed)
    out, done = [], 0
    while done < count:
        n = min(EVAL_BATCH, count - done)
        out.append(sample(jax.random.fold_in(key, done), n, **sizes))
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
    seed: int = EVALUATION_SEED,
) -> list[dict[str, Any]]:
    """Metrics of ``model`` at each size, each on its own fixed, seeded set of ``count`` sequences.

    The set for a size depends only on the seed and the size, not on which other sizes are
    evaluated, so figures from different commands agree.
    """
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    eval_step = make_eval_step(graphdef, rest)
    sets = []
    for size in sizes:
        size_seed = seed + zlib.crc32(json.dumps(size, sort_keys=True).encode())
        sets.append(fixed_batches(task, count, size_seed, **size))
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


def _pad_time(batch: Batch, T: int) -> Batch:
    pad = T - batch.inputs.shape[1]
    return Batch(*(jnp.pad(a, [(0, 0), (0, pad)] + [(0, 0)] * (a.ndim - 2)) for a in batch))


def machine_description() -> str:
    devices = jax.devices()
    kind = devices[0].device_kind if devices else "unknown"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, JAX {jax.__version__} on {devices[0].platform} ({kind})"


def _finite_or_none(x: Any) -> Any:
    """``x`` with every non-finite float (in nested dicts and lists too) replaced by None."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite_or_none(v) for v in x]
    return x


class Run(NamedTuple):
    """What ``train_and_evaluate`` returns."""

    model: nnx.Module  # NTM or LSTM
    summary: dict[str, Any]


def train_and_evaluate(
    config: Config,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    reporter: "Reporter | None" = None,
) -> Run:
    """Train ``config`` in ``run_dir`` until a budget or the early-stop target, then evaluate.

    Writes ``config.json``, ``metrics.jsonl`` (one object per validation point), TensorBoard
    event files under ``tensorboard/`` (unless ``config.train.tensorboard`` is False),
    ``checkpoint.safetensors`` (after every validation point and at the end) and
    ``summary.json``. With ``resume=True`` continues the run saved in ``run_dir`` exactly.
    """
    config = validate(config)
    t = config.train
    reporter = reporter or Reporter()
    run_dir = Path(run_dir)
    ckpt_path = run_dir / checkpoint.FILENAME
    start_time = time.perf_counter()

    # Task, model, optimiser.
    task = tasks.get(config.task)
    model = build_model(config)
    tx = make_optimizer(t)
    # Everything a resumed run needs besides the arrays: sequences seen, wall time, the target
    # streak, rollbacks and non-finite events, and the training metrics of the updates since
    # the last log point (set only by an interrupt between log points).
    counters = {"sequences": 0, "seconds": 0.0, "streak": 0, "first_target": None,
                "rollbacks": 0, "nonfinite": [], "pending": None, "rollback": None}
    step, opt_state = 0, None

    if resume:
        tensors, header = checkpoint.read(ckpt_path)
        saved = Config.from_dict(header["config"])
        changeable = {name: getattr(t, name) for name in RESUMABLE_TRAIN_FIELDS}
        if saved.replace(train=changeable) != config:
            raise checkpoint.CheckpointError(
                f"{ckpt_path} was written with a different configuration; a resumed run may "
                f"change only train.{', train.'.join(RESUMABLE_TRAIN_FIELDS)}"
            )
        nnx.update(model, checkpoint.restore_state(ckpt_path, nnx.state(model), tensors))
        params = nnx.state(model, nnx.Param)
        opt_state = checkpoint.restore_tree(ckpt_path, tx.init(params), tensors, "optimizer")
        step = header["step"]
        counters.update(header["counters"])
        # Drop log lines written after the checkpoint (a kill between the two writes).
        lines = (run_dir / "metrics.jsonl").read_text().splitlines(keepends=True)
        kept = [l for l in lines if json.loads(l)["sequences"] <= counters["sequences"]]
        (run_dir / "metrics.jsonl").write_text("".join(kept))
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        if ckpt_path.exists():
            raise checkpoint.CheckpointError(
                f"{run_dir} already holds a run ({ckpt_path.name}); pass --resume to continue "
                "it or choose another --run-dir"
            )
        (run_dir / "metrics.jsonl").write_text("")
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    opt_state = tx.init(params) if opt_state is None else opt_state
    state = TrainState(params, opt_state, jnp.asarray(step, jnp.int32),
                       jnp.asarray(counters["rollbacks"], jnp.int32))
    pending = _unpack_pending(counters["pending"])

    data_key = jax.random.fold_in(jax.random.key(t.seed), 1)
    train_step = make_train_step(graphdef, rest, task, tx, t.batch_size, data_key)
    eval_step = make_eval_step(graphdef, rest)
    val_batches = fixed_batches(task, t.val_size, VALIDATION_SEED)
    val_optimum = optimal_bits(task, val_batches)  # None unless the task has an optimum
    target_bits = task.target(val_optimum)
    n_params = count_parameters(model)

    def save(status: str, pending: list | None = None, rollback_point=None) -> None:
        """Checkpoint the run. An interrupt between log points also stores the metrics of the
        updates since the last one (``pending``) and the state a rollback would return to
        (that log point's), so that the resumed run goes on exactly as an uninterrupted one."""
        extra, rollback = None, None
        if rollback_point is not None:
            good_state, good_counters = rollback_point
            extra = {ROLLBACK_PREFIX: (good_state.params, good_state.opt_state)}
            rollback = {**good_counters, "step": int(good_state.step)}
        meta = {"config": config.to_dict(), "step": int(state.step),
                "counters": {**counters, "pending": _pack_pending(pending),
                             "rollback": rollback}, "status": status}
        model_state = nnx.merge_state(state.params, rest)
        checkpoint.save(ckpt_path, model_state, meta, state.opt_state, extra)

    # Compile once, up front, so that the progress bar's speeds are honest.
    compile_start = time.perf_counter()
    jax.block_until_ready(train_step.lower(state).compile())
    compile_seconds = time.perf_counter() - compile_start

    elapsed_before = counters["seconds"]
    deadline = None if t.minutes is None else t.minutes * 60.0
    status = "budget: sequences"
    last_log_time = time.perf_counter()
    last_log_sequences = counters["sequences"] - len(pending) * t.batch_size
    # Where a rollback returns to: the state and counters of the last log point's checkpoint
    # (after an interrupt between log points, the one stored beside the interrupt's state).
    good = (state, {k: counters[k] for k in ("sequences", "streak", "first_target")})
    if counters.get("rollback"):
        point = dict(counters["rollback"])
        good_params, good_opt = checkpoint.restore_tree(
            ckpt_path, (state.params, state.opt_state), tensors, ROLLBACK_PREFIX)
        good = (TrainState(good_params, good_opt, jnp.asarray(point.pop("step"), jnp.int32),
                           state.stream), point)
    reporter.start(config, n_params, counters["sequences"], compile_seconds)
    if val_optimum is not None:
        reporter.message(
            f"The optimal predictor scores {val_optimum:.2f} bits per sequence on the "
            f"{t.val_size:,} validation sequences; the target is {target_bits:.2f}."
        )

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - start_time

    # TensorBoard: a resumed run drops the events logged after its checkpoint, as it does
    # the lines of metrics.jsonl, so that both show one curve.
    tensorboard = None
    if t.tensorboard:
        from tensorboardX import SummaryWriter  # imported here: it is slow to import

        if not resume:  # a fresh run replaces what an attempt without a checkpoint left
            for stale in (run_dir / TENSORBOARD_DIR).glob("events.out.tfevents.*"):
                stale.unlink()
        tensorboard = SummaryWriter(str(run_dir / TENSORBOARD_DIR),
                                    purge_step=counters["sequences"] + 1 if resume else None)
        if not resume:
            tensorboard.add_text("config", "```\n" + json.dumps(config.to_dict(), indent=2)
                                 + "\n```", 0)

    val = None
    # A resumed run that had already stopped early, or spent its minutes, stops again at once
    # (it goes on if those budgets were raised).
    stop = _stop_reason(t, counters, deadline is not None and counters["seconds"] >= deadline)
    status = stop or status
    signals = _GracefulStop()
    try:
        while stop is None and counters["sequences"] < t.sequences:
            if signals.received:
                raise _StopRequested(signals.received)
            state, m = train_step(state)
            pending.append(m)
            counters["sequences"] += t.batch_size
            reporter.advance(t.batch_size)
            # Log points fall on multiples of eval_every, so a resumed run logs where an
            # uninterrupted one would.
            at_log = counters["sequences"] // t.eval_every > last_log_sequences // t.eval_every
            out_of_time = deadline is not None and elapsed() >= deadline
            if not (at_log or out_of_time or counters["sequences"] >= t.sequences):
                continue

            # A log point: gather the training metrics since the last one.
            stacked = _stack(pending)
            now = time.perf_counter()
            speed = (counters["sequences"] - last_log_sequences) / max(now - last_log_time, 1e-9)
            counters["seconds"] = elapsed()
            flags = stacked["finite"]
            bad = np.flatnonzero(~flags)
            if bad.size:
                # Those updates were skipped, so the parameters are finite; nothing of this
                # stretch is logged.
                first = int(state.step) - len(flags) + int(bad[0]) + 1
                quantity = "loss" if not stacked["loss_finite"][bad[0]] else "gradients"
                counters["nonfinite"].append({"update": first, "quantity": quantity,
                                              "sequences": first * t.batch_size})
                pending.clear()
                if t.on_nonfinite == "rollback" and counters["rollbacks"] < t.max_rollbacks:
                    counters["rollbacks"] += 1
                    state, saved_counters = good
                    counters.update(saved_counters)
                    state = state._replace(stream=jnp.asarray(counters["rollbacks"], jnp.int32))
                    last_log_time, last_log_sequences = now, counters["sequences"]
                    reporter.rewind(counters["sequences"])
                    reporter.message(
                        f"[yellow]Non-finite {quantity} at update {first:,} "
                        f"({len(bad)} of the last {len(flags)} updates); rolled back to the "
                        f"checkpoint at {counters['sequences']:,} sequences and went on with "
                        f"fresh batches (rollback {counters['rollbacks']} of at most "
                        f"{t.max_rollbacks})."
                    )
                    save("running")
                    continue
                status = f"stopped: non-finite {quantity} at update {first}"
                why = ("train.on_nonfinite is 'stop'" if t.on_nonfinite == "stop" else
                       f"the {t.max_rollbacks} rollbacks allowed are spent")
                reporter.message(
                    f"[red]Non-finite {quantity} at update {first:,}; that update was skipped, so "
                    f"the parameters are finite, and training stops ({why})."
                )
                val = None  # the final validation is of the parameters as they are now
                break

            # Validate and log.
            val = evaluate_batches(eval_step, state.params, val_batches)
            record = {
                "sequences": counters["sequences"],
                "step": int(state.step),
                "loss": float(np.mean(stacked["loss"])),
                "bits": float(np.mean(stacked["bits"])),
                "bit_errors": float(np.mean(stacked["bit_errors"])),
                "val_bits": val["bits"],
                "val_bit_errors": val["bit_errors"],
                "lr": learning_rate(t, state.opt_state, int(state.step)),
                "sequences_per_second": speed,
                "wall_seconds": counters["seconds"],
            }
            record = _finite_or_none(record)
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record, allow_nan=False) + "\n")
            reporter.log(record)
            if tensorboard is not None:
                _log_scalars(tensorboard, record, float(np.mean(stacked["grad_norm"])))
            pending.clear()
            last_log_time, last_log_sequences = now, counters["sequences"]

            target_met = val["bits"] < target_bits
            counters["streak"] = counters["streak"] + 1 if target_met else 0
            if target_met and counters["first_target"] is None:
                counters["first_target"] = {"sequences": counters["sequences"],
                                            "seconds": counters["seconds"]}
            save("running")
            good = (state, {k: counters[k] for k in ("sequences", "streak", "first_target")})
            stop = _stop_reason(t, counters, out_of_time)
            if stop is not None:
                status = stop
                break
    except _StopRequested:
        # A first Ctrl-C (or SIGTERM) stops before an update, with the metrics of the updates
        # since the last log point in hand: the checkpoint holds everything the rest of the
        # run needs to go on exactly as an uninterrupted one.
        counters["seconds"] = elapsed()
        status = "interrupted"
        save(status, pending, rollback_point=good)
        reporter.stop()
        reporter.message(
            f"Interrupted at {counters['sequences']:,} sequences; the checkpoint is saved. "
            f"Continue with: diffmem train --resume {shlex.quote(str(run_dir))}"
        )
        raise
    except KeyboardInterrupt:
        # A second Ctrl-C (or one outside the main thread) lands anywhere, perhaps inside the
        # bookkeeping; the checkpoint of the last log point stays, and a resumed run redoes the
        # updates since, exactly.
        reporter.stop()
        reporter.message(
            f"Interrupted; the checkpoint at {good[1]['sequences']:,} sequences stays. "
            f"Continue with: diffmem train --resume {shlex.quote(str(run_dir))}"
        )
        raise
    finally:
        signals.restore()
        reporter.stop()
        if tensorboard is not None:
            tensorboard.close()

    save(status)
    model = nnx.merge(graphdef, state.params, rest)
    # The loop ends on a log point, whose validation is the final one (unless it never ran).
    final = val if val is not None else evaluate_batches(eval_step, state.params, val_batches)
    if val_optimum is not None:
        final = {**final, "optimal_bits": val_optimum}
    generalisation = evaluate(model, task, list(task.eval_sizes), count=t.eval_count)
    summary = {
        "task": config.task,
        "model": config.model.kind,
        "preset": config.preset,
        "seed": t.seed,
        "parameters": n_params,
        "status": status,
        "sequences": counters["sequences"],
        "steps": int(state.step),
        "train_seconds": counters["seconds"],
        "compile_seconds": compile_seconds,
        "target_bits": target_bits,
        "paper_parameters": paper_parameters(config),
        "reached_target": final["bits"] < target_bits,
        "first_below_target": counters["first_target"],
        "nonfinite_events": counters["nonfinite"],
        "rollbacks": counters["rollbacks"],
        "validation": final,
        "generalisation": generalisation,
        "machine": machine_description(),
        "run_dir": str(run_dir),
    }
    summary = _finite_or_none(summary)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    reporter.summary(summary)
    return Run(model, summary)


def _stop_reason(t: TrainConfig, counters: dict[str, Any], out_of_time: bool) -> str | None:
    """Why a run stops at a log point, or None if it goes on: the validation target met at
    ``patience`` points in a row (with early stopping on), or the minutes spent."""
    if t.early_stop and counters["streak"] >= t.patience:
        return "target reached"
    return "budget: minutes" if out_of_time else None


class _StopRequested(KeyboardInterrupt):
    """Raised by the training loop itself, before an update, after a first Ctrl-C (SIGINT) or
    SIGTERM; ``signum`` is the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _GracefulStop:
    """While training, a first SIGINT (Ctrl-C) or SIGTERM only sets ``received``: the loop
    then stops before its next update and saves. A second one acts as usual (SIGINT raises
    KeyboardInterrupt at once). Signals can be caught only in the main thread; elsewhere this
    does nothing and Ctrl-C interrupts directly."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(sig) is signal.SIG_IGN:
                    continue  # a signal the caller ignores stays ignored
                self.previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.received = signum
        signal.signal(signum, self.previous[signum] or signal.SIG_DFL)

    def restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler or signal.SIG_DFL)  # None: set outside Python
        self.previous = {}


_PENDING_DTYPES = {"finite": bool, "loss_finite": bool, "grads_finite": bool}


def _stack(pending: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per-update training metrics as host arrays, one per metric, stacked over the updates."""
    return jax.device_get({k: jnp.stack([p[k] for p in pending]) for k in pending[0]})


def _pack_pending(pending: list[dict[str, Any]] | None) -> dict[str, list] | None:
    """The per-update training metrics since the last log point, as JSON lists (float32
    values convert to doubles exactly)."""
    if not pending:
        return None
    stacked = _stack(pending)
    return {k: [bool(x) if v.dtype == bool else float(x) for x in v] for k, v in stacked.items()}


def _unpack_pending(packed: dict[str, list] | None) -> list[dict[str, np.ndarray]]:
    if not packed:
        return []
    n = len(next(iter(packed.values())))
    return [{k: np.asarray(v[i], dtype=_PENDING_DTYPES.get(k, np.float32))
             for k, v in packed.items()} for i in range(n)]


def _log_scalars(writer, record: dict[str, Any], grad_norm: float) -> None:
    """One validation point's metrics as TensorBoard scalars, against sequences seen."""
    scalars = {
        "train/loss": record["loss"], "train/bits_per_sequence": record["bits"],
        "train/bit_errors_per_sequence": record["bit_errors"], "train/grad_norm": grad_norm,
        "validation/bits_per_sequence": record["val_bits"],
        "validation/bit_errors_per_sequence": record["val_bit_errors"],
        "train/learning_rate": record["lr"],
        "speed/sequences_per_second": record["sequences_per_second"],
    }
    for tag, value in scalars.items():
        if value is not None and math.isfinite(value):
            writer.add_scalar(tag, value, record["sequences"])
    writer.flush()


class Reporter:
    """Receives progress events from ``train_and_evaluate``; this base class is silent.

    The CLI passes a ``rich`` progress bar (diffmem.cli.RichReporter); a notebook may pass its
    own subclass.
    """

    def start(self, config: Config, parameters: int, sequences: int, compile_seconds: float):
        pass

    def advance(self, sequences: int) -> None:
        pass

    def log(self, record: dict[str, Any]) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def rewind(self, sequences: int) -> None:
        """Training went back to ``sequences`` (a rollback after a non-finite step)."""

    def stop(self) -> None:
        pass

    def summary(self, summary: dict[str, Any]) -> None:
        pass
