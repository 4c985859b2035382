"""The training loop: one for a single run and for a population of runs.

``train_and_evaluate(config, run_dir)`` reads top to bottom: take the run directory, set up
(task, model, optimiser, the loop's state, fresh or resumed), compile, loop, finish. A
population (``diffmem.training.population``) goes through the same ``set_up`` and
``train_loop`` with several runs and its own compiled update, a ``Stepper``.

Between log points the runs step together; at a log point each is validated, logged and
checkpointed (``log_point``), and the recovery rules (``diffmem.training.recovery``) may act.
A run stops at the early-stop target, its budgets or a non-finite step it cannot recover
from; the loop ends when every run has stopped. The loop's state and checkpoints are in
``diffmem.training.state``, the run directory's files in ``diffmem.rundir``.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import jax
import numpy as np
from flax import nnx

from diffmem import checkpoint, lock, programs, rundir, tasks
from diffmem.config import Config, TrainConfig, validate
from diffmem.models import build_model, count_parameters
from diffmem.tasks import Task
from diffmem.training import recovery
from diffmem.training.evaluation import Validation, make_validation, rank
from diffmem.training.interrupt import GracefulStop, StopRequested
from diffmem.training.optim import learning_rate, make_optimizer
from diffmem.training.reporter import Reporter
from diffmem.training.state import (
    FirstTarget,
    LoopState,
    resume_run,
    save_best,
    save_checkpoint,
    stack_pending,
    start_run,
)
from diffmem.training.step import compile_step, data_key, make_train_step, update_key
from diffmem.training.summary import summarise


class Run(NamedTuple):
    """What training returns for each run."""

    model: nnx.Module  # the trained model: the best log point's
    summary: dict[str, Any]


class Clock(NamedTuple):
    """The run's wall time: this attempt's, plus ``before`` seconds of earlier attempts."""

    started: float  # time.perf_counter() when this attempt began
    before: float = 0.0

    def __call__(self) -> float:
        return self.before + time.perf_counter() - self.started


@dataclass(frozen=True)
class Session:
    """What the loop's helpers read and never change: one run's attempt."""

    config: Config
    run_dir: Path
    rest: nnx.State  # the model's variables other than parameters
    data_key: jax.Array  # the key of every training batch (see ``step.data_key``)
    validation: Validation
    reporter: Reporter
    clock: Clock
    rules: list[recovery.Rule]
    prefix: str = ""  # before the run's messages: its name, in a population
    tensorboard: Any = None  # a tensorboardX SummaryWriter, or None
    extra: dict[str, Any] | None = None  # more for the summary (a population's)

    @property
    def name(self) -> str:
        return self.run_dir.name

    def say(self, text: str) -> None:
        self.reporter.message(self.prefix + text)


class Stepper(Protocol):
    """A compiled update of the running runs (the ``running`` flags are over all runs)."""

    def __call__(self, running: list[bool]) -> Any:
        """One update; its metrics (what ``gather`` hands to the runs)."""

    def gather(self, pending: list[Any], running: list[bool]) -> None:
        """Give every run its state, and each running one the metrics of ``pending``."""

    def restack(self, running: list[bool]) -> None:
        """After log points, which may change states or stop runs."""


class Setup(NamedTuple):
    """A run's or a population's parts, built by ``set_up``."""

    task: Task
    graphdef: Any
    rest: nnx.State
    loops: list[LoopState]
    sessions: list[Session]
    parameters: int
    home: Path  # the directory ``diffmem train --resume`` takes: the run's or the population's


def set_up(configs: Sequence[Config], dirs: Sequence[Path], resume: bool, reporter: Reporter,
           started: float, home: Path, population: dict[str, Any] | None = None) -> Setup:
    """Task, models, optimisers, loop states (fresh, or resumed from each directory's
    checkpoint), validation and sessions of runs that differ at most in seed and rate. In a
    ``population`` a member with no checkpoint yet starts afresh on resuming."""
    config = configs[0]
    task = tasks.get(config.task)
    models = [build_model(c) for c in configs]
    loops = []
    for d, c, m in zip(dirs, configs, models):
        tx = make_optimizer(c.train)
        go_on = resume and (population is None or (d / checkpoint.FILENAME).is_file())
        loops.append(resume_run(d, c, m, tx) if go_on else start_run(d, m, tx))
    graphdef, _, rest = nnx.split(models[0], nnx.Param, ...)
    for d, c, loop in zip(dirs, configs, loops):
        rundir.write_config(d, c)
        if resume:  # the best model as the checkpoint has it, should a kill have left it behind
            save_best(d, c, loop, rest)
    validation = make_validation(task, config, models[0])
    sessions = [
        Session(c, d, rest, data_key(c.train.seed), validation, reporter,
                Clock(started, loop.seconds), recovery.rules(c),
                prefix=f"{d.name}: " if population else "",
                tensorboard=rundir.tensorboard_writer(d, c, loop.sequences if resume else None),
                extra=population and {"population": population})
        for c, d, loop in zip(configs, dirs, loops)]
    return Setup(task, graphdef, rest, loops, sessions, count_parameters(models[0]), home)


@contextlib.contextmanager
def held(dirs: Sequence[Path]) -> Iterator[list[str]]:
    """Hold the lock of every directory in ``dirs`` (``diffmem.lock``): a second trainer of
    any of them is refused until these are released. Yields what to tell the user: locks
    taken over from trainers that were killed."""
    with contextlib.ExitStack() as stack:
        locks = [stack.enter_context(lock.hold(d)) for d in dirs]
        yield [f"{d}: {held.took_over}" for d, held in zip(dirs, locks) if held.took_over]


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
    ``best.safetensors`` (the model of the best validation point so far, see
    ``evaluation.rank``) and ``summary.json`` (see ``diffmem.rundir``). The returned model
    and the summary's figures are the best checkpoint's. With ``resume=True`` continues the
    run saved in ``run_dir`` exactly. A directory that another trainer holds is refused
    (``diffmem.lock.RunDirBusy``) before anything in it changes.
    """
    started = time.perf_counter()
    config = validate(config)
    run_dir = Path(run_dir)
    reporter = reporter or Reporter()
    if resume and not run_dir.is_dir():
        raise checkpoint.CheckpointError(f"there is no run directory {run_dir} to resume")
    with held([run_dir]) as notes:
        for note in notes:
            reporter.message(note)
        setup = set_up([config], [run_dir], resume, reporter, started, home=run_dir)
        # Compile once, up front, so that the progress display's speeds are honest.
        compile_start = time.perf_counter()
        stepper = SingleStep(setup, config)
        compile_seconds = time.perf_counter() - compile_start
        return train_loop(setup, stepper, compile_seconds)[0]


class SingleStep:
    """The compiled update of one run (``step.make_train_step``)."""

    def __init__(self, setup: Setup, config: Config) -> None:
        t, loop, s = config.train, setup.loops[0], setup.sessions[0]
        tx = make_optimizer(t)
        self.loop, self.key = loop, s.data_key
        self.compiled = programs.get(
            update_key("train step", config, setup.graphdef, setup.rest, setup.task, loop.state),
            lambda: compile_step(make_train_step(setup.graphdef, setup.rest, setup.task, tx,
                                                 t.batch_size),
                                 loop.state, self.key, batch_size=t.batch_size))

    def __call__(self, running: list[bool]) -> dict[str, jax.Array]:
        self.loop.state, metrics = self.compiled(self.loop.state, self.key)
        return metrics

    def gather(self, pending: list[dict[str, jax.Array]], running: list[bool]) -> None:
        if running[0]:
            self.loop.pending.extend(pending)

    def restack(self, running: list[bool]) -> None:
        pass  # the state is the loop's own


def train_loop(setup: Setup, stepper: Stepper, compile_seconds: float) -> list[Run]:
    """Update the runs until each has stopped (a budget, the early-stop target or a
    non-finite step); finish each as it stops; return every run's model and summary."""
    loops, sessions = setup.loops, setup.sessions
    config, reporter = sessions[0].config, sessions[0].reporter
    t = config.train
    end = deadline(t)
    # A resumed run that had already stopped, or spent a budget, stops again at once (it goes
    # on if that budget was raised).
    stops = [initial_stop(t, loop, end) for loop in loops]
    reporter.start([s.config for s in sessions], [s.name for s in sessions], setup.parameters,
                   sum(loop.sequences for loop in loops), compile_seconds,
                   seconds=max(s.clock() for s in sessions))
    optimum = sessions[0].validation.optimum
    if optimum is not None:
        reporter.message(
            f"The optimal predictor scores {optimum:.2f} bits per sequence on the "
            f"{t.val_size:,} validation sequences; the target is "
            f"{sessions[0].validation.target:.2f}.")
    for loop in loops:  # after compiling, so that the first log point's speed is honest
        loop.log_time = time.perf_counter()
        loop.log_sequences = loop.sequences - len(loop.pending) * t.batch_size
    runs: list[Run | None] = [None] * len(loops)

    def finish(k: int, status: str) -> None:
        runs[k] = finish_run(loops[k], sessions[k], setup, status, compile_seconds)

    try:
        with interruptible(loops, sessions, stops, setup.home) as signals:
            for k, stop in enumerate(stops):
                # A population's members that stopped before this attempt keep their
                # summaries; a single run stopped before is summarised again.
                summary = rundir.read_summary(sessions[k].run_dir) if sessions[k].extra else None
                if stop is not None and summary is not None:
                    runs[k] = Run(best_model(loops[k], setup), summary)
                elif stop is not None:
                    finish(k, stop)
            step_until_stopped(loops, sessions, stepper, stops, end, signals, finish)
    finally:
        for s in sessions:
            if s.tensorboard is not None:
                s.tensorboard.close()
    reporter.summary([r.summary for r in runs])
    return runs


def deadline(t: TrainConfig) -> float:
    """The seconds after which the minutes budget ends a run (infinite without one)."""
    return math.inf if t.minutes is None else t.minutes * 60.0


def initial_stop(t: TrainConfig, loop: LoopState, deadline: float) -> str | None:
    """Why a run stops before its first update of this attempt, or None."""
    stop = stop_reason(t, loop, loop.seconds >= deadline)
    if stop is None and loop.sequences >= t.sequences:
        stop = "budget: sequences"
    return stop


def step_until_stopped(loops: list[LoopState], sessions: list[Session], stepper: Stepper,
                       stops: list[str | None], deadline: float, signals: GracefulStop,
                       finish: Callable[[int, str], None]) -> None:
    """Update the running runs, with a log point for each where it falls, until every run
    has stopped."""
    t, reporter = sessions[0].config.train, sessions[0].reporter
    pending: list[Any] = []  # each update's metrics, as the stepper returned them
    while True:
        running = [stop is None for stop in stops]
        if not any(running):
            return
        if signals.received:
            stepper.gather(pending, running)
            raise StopRequested(signals.received)
        pending.append(stepper(running))
        for loop, go in zip(loops, running):
            loop.sequences += t.batch_size if go else 0
        reporter.advance(t.batch_size * sum(running))
        # Log points fall on multiples of eval_every, so a resumed run logs where an
        # uninterrupted one would.
        due = [(k, s.clock() >= deadline) for k, (loop, s) in enumerate(zip(loops, sessions))
               if running[k]]
        due = [(k, late) for k, late in due if late or loops[k].on_log_grid(t.eval_every)
               or loops[k].sequences >= t.sequences]
        if not due:
            continue
        stepper.gather(pending, running)
        pending = []
        for k, out_of_time in due:
            stop = log_point(loops[k], sessions[k], out_of_time)
            if stop is None and loops[k].sequences >= t.sequences:
                stop = "budget: sequences"
            stops[k] = stop
            if stop is not None:
                finish(k, stop)
        stepper.restack([stop is None for stop in stops])


def finish_run(loop: LoopState, s: Session, setup: Setup, status: str,
               compile_seconds: float) -> Run:
    """A run stopped: its last checkpoint, and its summary of the best log point's model."""
    save_checkpoint(s.run_dir, s.config, loop, s.rest, status)
    model = best_model(loop, setup)
    summary = summarise(loop, s, model, status, setup.parameters, compile_seconds,
                        **(s.extra or {}))
    s.reporter.finished(s.name, summary)
    return Run(model, summary)


def best_model(loop: LoopState, setup: Setup) -> nnx.Module:
    """The best log point's model: the run's result (the last one's without a log point)."""
    best = loop.state.params if loop.best_params is None else loop.best_params
    return nnx.merge(setup.graphdef, best, setup.rest)


def log_point(loop: LoopState, s: Session, out_of_time: bool) -> str | None:
    """Validate, log and checkpoint; let the recovery rules act; return why the run stops
    here, or None to go on."""
    t = s.config.train
    metrics = stack_pending(loop.pending)
    now = time.perf_counter()
    speed = (loop.sequences - loop.log_sequences) / max(now - loop.log_time, 1e-9)
    loop.seconds = s.clock()
    if not metrics["finite"].all():
        return after_nonfinite(loop, s, metrics, now)
    # A point on the eval_every grid, not one where a budget ended between two of them.
    on_grid = loop.on_log_grid(t.eval_every)
    loop.validation = s.validation(loop.state.params)
    check = s.validation.run_check(loop.state.params)
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
    s.reporter.log(s.name, record)
    if s.tensorboard is not None:
        rundir.log_scalars(s.tensorboard, record, float(np.mean(metrics["grad_norm"])))
    loop.pending.clear()
    loop.log_time, loop.log_sequences = now, loop.sequences
    improved = keep_best(loop, check, s.validation.target)
    # The rules act only on the grid, where an uninterrupted run has its log points too: a
    # run resumed with a raised budget then acts where one would have, and one stopped by
    # its minutes does not end on an action that never trains.
    if on_grid:
        any(rule.on_log_point(loop, s, improved) for rule in s.rules)
    save_checkpoint(s.run_dir, s.config, loop, s.rest, "running")
    if improved:  # after the last checkpoint, which holds the best parameters too
        save_best(s.run_dir, s.config, loop, s.rest)
    loop.rollback = loop.mark()
    return stop_reason(t, loop, out_of_time)


def keep_best(loop: LoopState, check: list[dict[str, Any]], target: float) -> bool:
    """Count the streaks of this log point and keep it if it is the best so far (see
    ``evaluation.rank``); return whether it is."""
    target_met = loop.validation["bits"] < target
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
    return improved


def after_nonfinite(loop: LoopState, s: Session, metrics: dict[str, np.ndarray],
                    now: float) -> str | None:
    """Record the first non-finite update since the last log point (those updates were
    skipped, so the parameters are finite); let a rule recover (a rollback), or return why
    the run stops."""
    t = s.config.train
    bad = np.flatnonzero(~metrics["finite"])
    first = int(loop.state.step) - len(metrics["finite"]) + int(bad[0]) + 1
    quantity = "loss" if not metrics["loss_finite"][bad[0]] else "gradients"
    loop.nonfinite.append({"update": first, "quantity": quantity,
                           "sequences": first * t.batch_size})
    loop.pending.clear()
    event = recovery.NonFinite(first, quantity, int(bad.size), int(metrics["finite"].size))
    before = loop.sequences
    if any(rule.on_nonfinite(loop, s, event) for rule in s.rules):
        loop.log_time, loop.log_sequences = now, loop.sequences
        s.reporter.rewind(before - loop.sequences)
        save_checkpoint(s.run_dir, s.config, loop, s.rest, "running")
        return None
    s.say(f"[red]Non-finite {quantity} at update {first:,}; that update was skipped, so the "
          f"parameters are finite, and training stops (train.on_nonfinite={t.on_nonfinite}, "
          f"{loop.rollbacks} of train.max_rollbacks={t.max_rollbacks} rollbacks used).")
    loop.validation = None  # the last validation is of the parameters as they are now
    return f"stopped: non-finite {quantity} at update {first}"


def stop_reason(t: TrainConfig, loop: LoopState, out_of_time: bool) -> str | None:
    """Why a run stops at a log point, or None if it goes on: the validation target met and
    the generalisation check passed at ``patience`` points in a row (with early stopping on),
    or the minutes spent."""
    if t.early_stop and min(loop.streak, loop.check_streak) >= t.patience:
        return "target reached"
    return "budget: minutes" if out_of_time else None


@contextlib.contextmanager
def interruptible(loops: list[LoopState], sessions: list[Session], stops: list[str | None],
                  home: Path):
    """Stop on a first Ctrl-C or SIGTERM between two updates: every running run saves what it
    needs to go on exactly as an uninterrupted one; say how to resume (``home``: the run's or
    the population's directory)."""
    signals = GracefulStop()
    reporter = sessions[0].reporter
    resume = f"Continue with: diffmem train --resume {shlex.quote(str(home))}"
    try:
        yield signals
    except StopRequested:
        for loop, s, stop in zip(loops, sessions, stops):
            if stop is None:  # a stopped run's files are final
                loop.seconds = s.clock()
                save_checkpoint(s.run_dir, s.config, loop, s.rest, "interrupted",
                                interrupted=True)
        reporter.stop()
        at = f" at {loops[0].sequences:,} sequences" if len(loops) == 1 else ""
        reporter.message(f"Interrupted{at}; the checkpoint{'s are' if len(loops) > 1 else ' is'}"
                         f" saved. {resume}")
        raise
    except KeyboardInterrupt:
        # A second Ctrl-C (or one outside the main thread) lands anywhere, perhaps inside the
        # bookkeeping; the checkpoint of the last log point stays, and a resumed run redoes the
        # updates since, exactly.
        reporter.stop()
        at = (f"the checkpoint at {loops[0].rollback.sequences:,} sequences stays"
              if len(loops) == 1 else "each run's checkpoint of its last log point stays")
        reporter.message(f"Interrupted; {at}. {resume}")
        raise
    finally:
        signals.restore()
        reporter.stop()
