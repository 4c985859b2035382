"""Populations: several runs of one configuration trained in one process by one compiled update.

A population's members differ in their seed (initialisation and batches) and may differ in
their learning rate; everything else is shared. ``jax.vmap`` maps the update of
``diffmem.training.step.make_update`` over the members' stacked states, data keys and rates, so
that S runs at batch 1 cost about what one run at batch S costs.

Each member is a run of its own, in its own directory with the files of a single run
(``diffmem.rundir``), so that ``diffmem eval``, ``plot``, ``report`` and ``load`` work on it.
They train in the single run's loop (``diffmem.training.loop``), with the compiled update of
this module (``Steps``) in place of a single run's. A member that stops
(early stop, a budget, a non-finite stop) is masked, not branched on: the compiled update
leaves its state as it is while the others go on. A member's non-finite update is skipped and
rolled back for that member alone.

    POPULATION_DIR/
      population.json     the members: their directory names, seeds and learning rates
      seed-0/, seed-1/    one run directory per member (lr-0.001-seed-0/ ... with rates)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffmem import checkpoint, programs, rundir
from diffmem.config import Config, ConfigError, TrainConfig, validate
from diffmem.models import with_remat
from diffmem.tasks import Task
from diffmem.training.loop import (
    Run,
    Setup,
    deadline,
    held,
    initial_stop,
    set_up,
    train_loop,
)
from diffmem.training.optim import make_optimizer
from diffmem.training.reporter import Reporter
from diffmem.training.state import TrainState
from diffmem.training.step import compile_step, data_key, keep, make_update, update_key

POPULATION = "population.json"


def make_population_step(graphdef, rest, task: Task, t: TrainConfig, members: int,
                         **sizes: Any) -> Callable:
    """The jit-compiled ``step(states, data_keys, lrs, active) -> (states, metrics)`` of
    ``members`` runs: every argument has a leading axis of ``members``; a member whose
    ``active`` is False keeps its state (its metrics are computed and to be ignored)."""
    def member(state: TrainState, data_key: jax.Array, lr: jax.Array, active: jax.Array):
        # Vmapped members rematerialise as models side by side do (diffmem.scan.remat_policy).
        g = graphdef if members == 1 else with_remat(graphdef, state.params, rest, "dots_saveable")
        update = make_update(g, rest, task, t.batch_size, **sizes)
        new, metrics = update(state, data_key, make_optimizer(t, lr))
        return keep(active, new, state), metrics

    return jax.jit(jax.vmap(member))


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


def train_population(
    configs: Sequence[Config],
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    reporter: Reporter | None = None,
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
    run_dir = Path(run_dir)
    names = member_names(configs)
    dirs = [run_dir / name for name in names]
    if resume and read_population(run_dir) is None:
        raise checkpoint.CheckpointError(f"{run_dir} holds no population ({POPULATION}) to "
                                         "resume")
    reporter = reporter or Reporter()
    members = [{"dir": n, "seed": c.train.seed, "lr": c.train.lr}
               for n, c in zip(names, configs)]
    # The population's directory first, and its members' only once it may be claimed, so that
    # a refused population creates nothing.
    with held([run_dir]) as notes:
        _check_claim(run_dir, members, resume)
        with held(dirs) as member_notes:
            for note in notes + member_notes:
                reporter.message(note)
            if not resume:
                rundir.write_json(run_dir / POPULATION,
                                  {"task": configs[0].task, "members": members})
            setup = set_up(configs, dirs, resume, reporter, started, home=run_dir,
                           population={"run_dir": str(run_dir), "members": len(configs)})
            compile_start = time.perf_counter()
            steps = Steps(setup, configs)
            compile_seconds = time.perf_counter() - compile_start
            return train_loop(setup, steps, compile_seconds)


def _check_claim(run_dir: Path, members: list[dict[str, Any]], resume: bool) -> None:
    """Refuse a fresh population where one is already, and a resumed one whose members differ
    from those listed in its population.json."""
    listed = read_population(run_dir)
    if resume and listed != members:
        raise checkpoint.CheckpointError(
            f"{run_dir / POPULATION} lists other members than the ones to resume: "
            f"{listed}; resume with the population's own settings")
    if not resume and listed is not None:
        raise checkpoint.CheckpointError(
            f"{run_dir} already holds a population ({POPULATION}); pass --resume to continue "
            "it or choose another --run-dir")


class Steps:
    """The compiled update of the running members, and their stacked states. When members
    stop, their part of the update is masked; once a quarter of the compiled members or more
    have stopped, the update is compiled again for the running ones alone (a compilation
    costs seconds, a masked member its share of every update)."""

    def __init__(self, setup: Setup, configs: list[Config]) -> None:
        self.graphdef, self.rest, self.task = setup.graphdef, setup.rest, setup.task
        self.configs, self.loops = configs, setup.loops
        self.ids: list[int] = []  # the members in the compiled update, in its order
        # Members that stopped in an earlier attempt (and got no raised budget) are left out.
        t = configs[0].train
        self.compile([k for k, loop in enumerate(self.loops)
                      if initial_stop(t, loop, deadline(t)) is None])

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
