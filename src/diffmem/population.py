"""Populations: several runs of one configuration trained in one process by one compiled update.

A population's members differ in their seed (initialisation and batches) and may differ in
their learning rate; everything else is shared. ``jax.vmap`` maps the update of
``diffmem.train.make_update`` over the members' stacked states, data keys and rates, so that S
runs at batch 1 cost about what one run at batch S costs.

Each member is a run of its own, in its own directory with the files of a single run
(``diffmem.rundir``), so that ``diffmem eval``, ``plot``, ``report`` and ``load`` work on it.
Between log points the members step together; at a log point each is validated, logged and
checkpointed by the single run's code (``diffmem.train.log_point``). A member that stops
(early stop, a budget, a non-finite stop) is masked, not branched on: the compiled update
leaves its state as it is while the others go on. A member's non-finite update is skipped and
rolled back for that member alone.

    POPULATION_DIR/
      population.json     the members: their directory names, seeds and learning rates
      seed-0/, seed-1/    one run directory per member (lr-0.001-seed-0/ ... with rates)
"""

from __future__ import annotations

import json
import math
import os
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from diffmem import checkpoint, programs, rundir, scan, tasks
from diffmem.config import Config, ConfigError, TrainConfig, validate
from diffmem.models import build_model, count_parameters, for_evaluation, load
from diffmem.resume import (
    GracefulStop,
    LoopState,
    StopRequested,
    TrainState,
    resume_run,
    save_best,
    save_checkpoint,
    start_run,
)
from diffmem.tasks import Task
from diffmem.train import (
    VALIDATION_SEED,
    Clock,
    Reporter,
    Run,
    Session,
    Validation,
    compile_step,
    data_key,
    fixed_batches,
    keep,
    log_point,
    make_check,
    make_eval_step,
    make_optimizer,
    make_update,
    optimal_bits,
    stop_reason,
    summarise,
    update_key,
)

POPULATION = "population.json"


def make_population_step(graphdef, rest, task: Task, t: TrainConfig, members: int,
                         **sizes: Any) -> Callable:
    """The jit-compiled ``step(states, data_keys, lrs, active) -> (states, metrics)`` of
    ``members`` runs: every argument has a leading axis of ``members``; a member whose
    ``active`` is False keeps its state (its metrics are computed and to be ignored)."""
    update = make_update(graphdef, rest, task, t.batch_size, t.curriculum, **sizes)

    def member(state: TrainState, data_key: jax.Array, lr: jax.Array, active: jax.Array):
        new, metrics = update(state, data_key, make_optimizer(t, lr))
        return keep(active, new, state), metrics

    step = jax.vmap(member)

    def population_step(states, data_keys, lrs, active):
        with scan.members(members):  # read while tracing
            return step(states, data_keys, lrs, active)

    return jax.jit(population_step)


# Both compiled whole: leaf by leaf, every array shape would compile a program of its own.
@jax.jit
def stack(trees: list[Any]) -> Any:
    """The members' pytrees stacked on a new leading axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


@jax.jit
def member(tree: Any, k: int | jax.Array) -> Any:
    """Member ``k``'s slice of a stacked pytree."""
    return jax.tree.map(lambda leaf: leaf[k], tree)


# Members.

def member_configs(config: Config, seeds: Sequence[int],
                   lrs: Sequence[float] | None = None) -> list[Config]:
    """The members of ``config`` at every (rate, seed) pair: each seed of ``seeds`` at each
    rate of ``lrs`` (default: ``config.train.lr`` alone)."""
    seeds, lrs = list(seeds), list(lrs or [config.train.lr])
    if not seeds:
        raise ConfigError("a population needs at least one seed, e.g. --seeds 0-9")
    for what, values in (("seed", seeds), ("learning rate", lrs)):
        if len(set(values)) != len(values):
            raise ConfigError(f"the {what}s {values} repeat one; give each once")
    return [validate(config.replace(train={"lr": lr, "seed": seed}))
            for lr in lrs for seed in seeds]


def member_names(configs: Sequence[Config]) -> list[str]:
    """Each member's directory name: ``seed-S``, or ``lr-R-seed-S`` where the rates differ."""
    rates = len({c.train.lr for c in configs}) > 1
    return [(f"lr-{c.train.lr:g}-" if rates else "") + f"seed-{c.train.seed}" for c in configs]


def check_population(configs: Sequence[Config]) -> None:
    """Refuse members that differ in more than their seed and learning rate."""
    if not configs:
        raise ConfigError("a population needs at least one member")
    shared = lambda c: c.replace(train={"seed": 0, "lr": 1.0})  # noqa: E731
    for c in configs[1:]:
        if shared(c) != shared(configs[0]):
            raise ConfigError(
                "the members of a population may differ only in train.seed and train.lr; "
                f"member seed {c.train.seed} differs from seed {configs[0].train.seed} in more: "
                "train them as separate populations (diffmem sweep --grid does)")
    pairs = [(c.train.seed, c.train.lr) for c in configs]
    if len(set(pairs)) != len(pairs):
        raise ConfigError(f"two members have the same seed and learning rate: {pairs}")


def read_population(run_dir: str | os.PathLike) -> list[dict[str, Any]] | None:
    """The members listed in ``run_dir/population.json``, or None if it is not a population."""
    path = Path(run_dir) / POPULATION
    if not path.is_file():
        return None
    return json.loads(path.read_text())["members"]


def population_configs(run_dir: str | os.PathLike) -> list[Config]:
    """The configurations of a population's members, from their last checkpoints (for
    resuming; a member killed before its first checkpoint has its config.json)."""
    members = read_population(run_dir)
    if members is None:
        raise checkpoint.CheckpointError(f"{run_dir} holds no population ({POPULATION})")
    configs = []
    for m in members:
        path = Path(run_dir) / m["dir"] / checkpoint.FILENAME
        if path.is_file():
            configs.append(Config.from_dict(checkpoint.read_header(path)["config"]))
        else:
            configs.append(rundir.read_config(Path(run_dir) / m["dir"]))
    return configs


class PopulationReporter:
    """Receives progress events from ``train_population``; this base class is silent. Each
    member's own events (log points, messages) arrive as ``member_log`` and ``message``."""

    def start(self, configs: list[Config], names: list[str], parameters: int, sequences: int,
              compile_seconds: float, seconds: float = 0.0) -> None:
        """Training starts with ``sequences`` sequences done over all members."""

    def advance(self, sequences: int) -> None:
        """One update trained the running members on ``sequences`` more sequences in all."""

    def member_log(self, name: str, record: dict[str, Any]) -> None:
        """Member ``name``'s log point, as written to its metrics.jsonl."""

    def message(self, text: str) -> None:
        """A line for the user (may hold rich markup)."""

    def rewind(self, sequences: int) -> None:
        """A member went back ``sequences`` sequences (a rollback)."""

    def member_done(self, name: str, summary: dict[str, Any]) -> None:
        """Member ``name`` stopped; its summary.json."""

    def stop(self) -> None:
        """Training stopped; may be called more than once."""

    def summary(self, summaries: list[dict[str, Any]]) -> None:
        """Every member's summary, in the population's order."""


class _MemberReporter(Reporter):
    """A member's run events, passed on to the population's reporter with its name."""

    def __init__(self, parent: PopulationReporter, name: str) -> None:
        self.parent, self.name = parent, name

    def log(self, record: dict[str, Any]) -> None:
        self.parent.member_log(self.name, record)

    def message(self, text: str) -> None:
        self.parent.message(f"{self.name}: {text}")

    def rewind(self, sequences: int) -> None:
        self.parent.rewind(sequences)


def train_population(
    configs: Sequence[Config],
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    reporter: PopulationReporter | None = None,
) -> list[Run]:
    """Train the members ``configs`` (see ``member_configs``) side by side in ``run_dir``,
    one run directory each, until every member has stopped; return each member's ``Run``.

    Every member stops as a single run of its configuration would: the early-stop target, its
    budgets (the minutes are the population's wall time), or a non-finite stop. With
    ``resume=True`` the population saved in ``run_dir`` goes on from its members' checkpoints;
    members that had finished stay as they are, unless a raised budget lets them go on.
    """
    started = time.perf_counter()
    configs = [validate(c) for c in configs]
    check_population(configs)
    reporter = reporter or PopulationReporter()
    run_dir = Path(run_dir)
    names = member_names(configs)
    dirs = [run_dir / name for name in names]
    _claim(run_dir, configs, names, resume)
    config, t, S = configs[0], configs[0].train, len(configs)

    task = tasks.get(config.task)
    models = [build_model(c) for c in configs]
    txs = [make_optimizer(c.train) for c in configs]
    loops = [resume_run(d, c, m, tx) if resume and (d / checkpoint.FILENAME).is_file()
             else start_run(d, m, tx) for d, c, m, tx in zip(dirs, configs, models, txs)]
    graphdef, _, rest = nnx.split(models[0], nnx.Param, ...)
    for d, c, loop in zip(dirs, configs, loops):
        rundir.write_config(d, c)
        if resume:
            save_best(d, c, loop, rest)
    eval_step = make_eval_step(graphdef, rest)
    evaluation_model = for_evaluation(models[0], config)
    final_graphdef, _, final_rest = nnx.split(evaluation_model, nnx.Param, ...)
    final_eval_step = make_eval_step(final_graphdef, final_rest)
    batches = fixed_batches(task, t.val_size, VALIDATION_SEED)
    optimum = optimal_bits(task, batches)
    validation = Validation(batches, optimum, task.target(optimum),
                            make_check(task, config, models[0]))

    deadline = math.inf if t.minutes is None else t.minutes * 60.0
    stops: list[str | None] = []
    for loop in loops:
        stop = stop_reason(t, loop, loop.seconds >= deadline)
        if stop is None and loop.sequences >= t.sequences:
            stop = "budget: sequences"
        stops.append(stop)
    steps = Steps(graphdef, rest, task, configs, loops)
    compile_start = time.perf_counter()
    steps.compile([k for k, stop in enumerate(stops) if stop is None])
    compile_seconds = time.perf_counter() - compile_start

    sessions = [
        Session(c, d, rest, data_key(c.train.seed), eval_step, validation,
                _MemberReporter(reporter, name), Clock(started, loop.seconds),
                rundir.tensorboard_writer(d, c, loop.sequences if resume else None))
        for c, d, name, loop in zip(configs, dirs, names, loops)]
    n_params = count_parameters(models[0])
    reporter.start(configs, names, n_params, sum(loop.sequences for loop in loops),
                   compile_seconds, seconds=max(loop.seconds for loop in loops))
    if optimum is not None:
        reporter.message(
            f"The optimal predictor scores {optimum:.2f} bits per sequence on the "
            f"{t.val_size:,} validation sequences; the target is {validation.target:.2f}.")

    for loop in loops:
        loop.log_time = time.perf_counter()
        loop.log_sequences = loop.sequences - len(loop.pending) * t.batch_size
    # Members stopped before this attempt keep their summaries; the others are summarised
    # as they stop.
    finished = [stop is not None and (d / rundir.SUMMARY).is_file()
                for stop, d in zip(stops, dirs)]
    done = lambda k, status: _finish(  # noqa: E731
        k, status, loops, sessions, graphdef, rest, task, n_params, compile_seconds,
        final_eval_step, run_dir, S, reporter)
    try:
        with _interruptible(loops, sessions, stops, run_dir, reporter) as signals:
            for k, stop in enumerate(stops):
                if stop is not None and not finished[k]:
                    done(k, stop)
            _train(steps, loops, sessions, stops, deadline, signals, reporter, done)
    finally:
        for s in sessions:
            if s.tensorboard is not None:
                s.tensorboard.close()

    runs = [Run(load(d), rundir.read_summary(d)) for d in dirs]
    reporter.summary([r.summary for r in runs])
    return runs


def _claim(run_dir: Path, configs: list[Config], names: list[str], resume: bool) -> None:
    """Write population.json for a fresh population, or check a resumed one's."""
    members = [{"dir": n, "seed": c.train.seed, "lr": c.train.lr}
               for n, c in zip(names, configs)]
    listed = read_population(run_dir)
    if resume:
        if listed != members:
            raise checkpoint.CheckpointError(
                f"{run_dir / POPULATION} lists other members than the ones to resume: "
                f"{listed}; resume with the population's own settings")
        return
    if listed is not None:
        raise checkpoint.CheckpointError(
            f"{run_dir} already holds a population ({POPULATION}); pass --resume to continue "
            "it or choose another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    rundir.write_json(run_dir / POPULATION, {"task": configs[0].task, "members": members})


class Steps:
    """The compiled update of the running members, and their stacked states. When members
    stop, their part of the update is masked; once a quarter of the compiled members or more
    have stopped, the update is compiled again for the running ones alone (a compilation
    costs seconds, a masked member its share of every update)."""

    def __init__(self, graphdef, rest, task: Task, configs: list[Config],
                 loops: list[LoopState]) -> None:
        self.graphdef, self.rest, self.task, self.configs = graphdef, rest, task, configs
        self.loops = loops
        self.ids: list[int] = []  # the members in the compiled update, in its order

    def compile(self, ids: list[int]) -> None:
        """Compile the update of members ``ids`` and stack their states."""
        self.ids = ids
        if not ids:
            return
        t = self.configs[0].train
        configs = [self.configs[k] for k in ids]
        self.keys = jnp.stack([data_key(c.train.seed) for c in configs])
        self.lrs = jnp.asarray([c.train.lr for c in configs], jnp.float32)
        self.states = stack([self.loops[k].state for k in ids])
        active = jnp.ones((len(ids),), bool)
        self.compiled = programs.get(
            update_key("population step", self.configs[0], self.graphdef, self.rest,
                       self.task, self.states),
            lambda: compile_step(
                make_population_step(self.graphdef, self.rest, self.task, t, len(ids)),
                self.states, self.keys, self.lrs, active, batch_size=t.batch_size,
                members=len(ids)))

    def __call__(self, running: list[bool]) -> dict[str, jax.Array]:
        """One update of the running members; their metrics, over ``self.ids``."""
        active = jnp.asarray([running[k] for k in self.ids])
        self.states, metrics = self.compiled(self.states, self.keys, self.lrs, active)
        return metrics

    def gather(self, pending: list[dict[str, jax.Array]], running: list[bool]) -> None:
        """Give every compiled member its state, and each running one the metrics of its
        updates since the last gathering."""
        metrics = {k: np.stack([np.asarray(p[k]) for p in pending]) for k in pending[0]
                   } if pending else {}
        for j, k in enumerate(self.ids):
            self.loops[k].state = member(self.states, j)
            if running[k] and metrics:
                self.loops[k].pending.extend(
                    {name: values[u, j] for name, values in metrics.items()}
                    for u in range(len(pending)))

    def restack(self, running: list[bool]) -> None:
        """After log points: the members' states (a rollback changes them) stacked again, in
        an update compiled anew if enough members have stopped."""
        ids = [k for k in self.ids if running[k]]
        if len(ids) <= 0.75 * len(self.ids):
            self.compile(ids)
        else:
            self.states = stack([self.loops[k].state for k in self.ids])


def _train(steps: Steps, loops: list[LoopState], sessions: list[Session],
           stops: list[str | None], deadline: float, signals: GracefulStop,
           reporter: PopulationReporter, done: Callable) -> None:
    """Update the running members until every one has stopped."""
    t = sessions[0].config.train
    pending: list[dict[str, jax.Array]] = []  # per update, each metric over steps.ids
    while True:
        running = [stop is None for stop in stops]
        if not any(running):
            return
        if signals.received:
            steps.gather(pending, running)
            raise StopRequested(signals.received)
        pending.append(steps(running))
        for loop, go in zip(loops, running):
            loop.sequences += t.batch_size if go else 0
        reporter.advance(t.batch_size * sum(running))
        due = []
        for k, (loop, s) in enumerate(zip(loops, sessions)):
            if not running[k]:
                continue
            at_log = loop.on_log_grid(t.eval_every)
            out_of_time = s.clock() >= deadline
            if at_log or out_of_time or loop.sequences >= t.sequences:
                due.append((k, out_of_time))
        if not due:
            continue
        steps.gather(pending, running)
        pending = []
        for k, out_of_time in due:
            stop = log_point(loops[k], sessions[k], out_of_time)
            if stop is None and loops[k].sequences >= t.sequences:
                stop = "budget: sequences"
            stops[k] = stop
            if stop is not None:
                done(k, stop)
        steps.restack([stop is None for stop in stops])


def _finish(k: int, status: str, loops, sessions, graphdef, rest, task, parameters: int,
            compile_seconds: float, final_eval_step, run_dir: Path, members: int,
            reporter: PopulationReporter) -> None:
    """Member ``k`` stopped: its last checkpoint, best model and summary, as a single run's."""
    loop, s = loops[k], sessions[k]
    save_checkpoint(s.run_dir, s.config, loop, rest, status)
    best = loop.state.params if loop.best_params is None else loop.best_params
    model = nnx.merge(graphdef, best, rest)
    summary = summarise(loop, s, model, task, status, parameters, compile_seconds,
                        final_eval_step=final_eval_step,
                        population={"run_dir": str(run_dir), "members": members})
    reporter.member_done(s.run_dir.name, summary)


class _interruptible:
    """Stop on a first Ctrl-C or SIGTERM between two updates: every running member saves
    what it needs to go on exactly (as ``diffmem.train.interruptible`` does for one run)."""

    def __init__(self, loops, sessions, stops: list[str | None], run_dir: Path,
                 reporter: PopulationReporter) -> None:
        self.loops, self.sessions, self.stops, self.reporter = loops, sessions, stops, reporter
        self.resume = f"Continue with: diffmem train --resume {shlex.quote(str(run_dir))}"

    def __enter__(self) -> GracefulStop:
        self.signals = GracefulStop()
        return self.signals

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if kind is not None and issubclass(kind, StopRequested):
                for loop, s, stop in zip(self.loops, self.sessions, self.stops):
                    if stop is not None:
                        continue  # stopped already; its files are final
                    loop.seconds = s.clock()
                    save_checkpoint(s.run_dir, s.config, loop, s.rest, "interrupted",
                                    interrupted=True)
                self.reporter.stop()
                self.reporter.message(f"Interrupted; every member's checkpoint is saved. "
                                      f"{self.resume}")
            elif kind is not None and issubclass(kind, KeyboardInterrupt):
                self.reporter.stop()
                self.reporter.message("Interrupted; each member's checkpoint of its last log "
                                      f"point stays. {self.resume}")
        finally:
            self.signals.restore()
            self.reporter.stop()

