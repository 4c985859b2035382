"""How far a population's member is from the single run of its seed after a few updates.

    python experiments/member_vs_single.py associative-recall --updates 20

Trains seeds 0 and 1 of a task's default configuration for ``--updates`` updates twice: each as
a single run (``diffmem.train.make_train_step``) and both as one population
(``diffmem.population``, compiled as ``train_population`` compiles it), and prints, per member,
the largest difference of any parameter and the last update's losses. The two programs see the
same batches and differ in their compilation only.
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
from flax import nnx

from diffmem import population, tasks, train
from diffmem.config import resolve
from diffmem.models import build_model
from diffmem.resume import TrainState


def _state(config):
    graphdef, params, rest = nnx.split(build_model(config), nnx.Param, ...)
    zero = jnp.zeros((), jnp.int32)
    return graphdef, rest, TrainState(params, train.make_optimizer(config.train).init(params),
                                      zero, zero)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task")
    p.add_argument("--model", help="default: the task's")
    p.add_argument("--updates", type=int, default=20)
    args = p.parse_args()
    base = resolve(args.task, args.model)
    task = tasks.get(base.task)
    configs = population.member_configs(base, [0, 1])
    singles, single_losses = [], []
    for c in configs:
        graphdef, rest, state = _state(c)
        step = train.make_train_step(graphdef, rest, task, train.make_optimizer(c.train),
                                     c.train.batch_size)
        for _ in range(args.updates):
            state, metrics = step(state, train.data_key(c.train.seed))
        singles.append(state)
        single_losses.append(float(metrics["loss"]))
    graphdef, rest, _ = _state(base)
    states = population.stack([_state(c)[2] for c in configs])
    keys = jnp.stack([train.data_key(c.train.seed) for c in configs])
    lrs = jnp.asarray([c.train.lr for c in configs], jnp.float32)
    on = jnp.ones((2,), bool)
    step = train.compile_step(
        population.make_population_step(graphdef, rest, task, base.train, 2),
        states, keys, lrs, on, batch_size=base.train.batch_size, members=2)
    for _ in range(args.updates):
        states, metrics = step(states, keys, lrs, on)
    rows = []
    for k, c in enumerate(configs):
        diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(
            jax.tree.leaves(population.member(states, k).params),
            jax.tree.leaves(singles[k].params)))
        rows.append({"task": base.task, "model": base.model.kind, "seed": c.train.seed,
                     "updates": args.updates, "largest_parameter_difference": diff,
                     "single_loss": single_losses[k],
                     "member_loss": float(metrics["loss"][k]),
                     "device": train.machine_description()})
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
