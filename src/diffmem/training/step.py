"""The update: draw a batch, run the model over it, backpropagate the task's loss, step the
optimiser. One function, compiled for a single run here and vmapped over a population's
members in ``diffmem.training.population``.

Batches are a pure function of (seed, step, stream), so a resumed run sees exactly the batches
an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from diffmem import machine, programs
from diffmem.config import RESUMABLE_TRAIN_FIELDS, Config, TrainConfig
from diffmem.tasks import Batch, Task
from diffmem.training.state import TrainState


def data_key(seed: int) -> jax.Array:
    """The key every training batch is drawn from (with the step and the batch stream)."""
    return jax.random.fold_in(jax.random.key(seed), 1)


def batch_key(data_key: jax.Array, step: int | jax.Array, stream: int | jax.Array = 0) -> jax.Array:
    """The key of training batch ``step`` in batch stream ``stream``, from ``data_key``."""
    key = jax.random.fold_in(data_key, step)
    # Stream 0 keeps the batches of runs without rollbacks as they always were.
    return jax.lax.cond(stream > 0, lambda k: jax.random.fold_in(k, stream), lambda k: k, key)


def forward(graphdef, rest, params, batch: Batch) -> jax.Array:
    """The model's outputs (B, T, C_out) on ``batch``."""
    model = nnx.merge(graphdef, params, rest)
    outputs, _ = model(batch.inputs)
    return outputs


def make_update(graphdef, rest, task: Task, batch_size: int, **sizes: Any) -> Callable:
    """The update ``update(state, data_key, tx) -> (state, metrics)``, not compiled: sample
    batch ``state.step``, forward, backward on the task's loss, optimiser step.
    ``make_train_step`` compiles it for one run, ``diffmem.training.population`` for many.

    The batch is a function of ``data_key`` (see ``data_key``), the step and the state's batch
    stream only; ``sizes`` are passed to ``task.sample`` (none: the training distribution).

    An update whose loss or gradients are not finite leaves the parameters and optimiser
    state unchanged and reports ``finite == False`` (and which of the two: ``loss_finite``,
    ``grads_finite``).
    """

    def loss_fn(params, batch):
        outputs = forward(graphdef, rest, params, batch)
        return task.loss(outputs, batch), outputs

    def update(state: TrainState, data_key: jax.Array, tx: optax.GradientTransformation):
        batch = task.sample(batch_key(data_key, state.step, state.stream), batch_size, **sizes)
        (loss, outputs), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch)
        grad_norm = optax.tree.norm(grads)
        loss_finite, grads_finite = jnp.isfinite(loss), jnp.isfinite(grad_norm)
        finite = loss_finite & grads_finite
        updates, opt_state = tx.update(grads, state.opt_state, state.params, value=loss)
        params = optax.apply_updates(state.params, updates)
        new_state = TrainState(keep(finite, params, state.params),
                               keep(finite, opt_state, state.opt_state),
                               state.step + 1, state.stream)
        m = task.update_metrics(outputs, batch)
        m.update(grad_norm=grad_norm, finite=finite, loss_finite=loss_finite,
                 grads_finite=grads_finite)
        return new_state, m

    return update


def keep(condition: jax.Array, new: Any, old: Any) -> Any:
    """``new`` where ``condition`` holds, else ``old``, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), new, old)


def make_train_step(
    graphdef, rest, task: Task, tx: optax.GradientTransformation, batch_size: int,
    **sizes: Any,
) -> Callable[[TrainState, jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    """The jit-compiled update ``train_step(state, data_key)`` of one run (``make_update``).
    The key is an argument, not a constant, so that one compiled program serves every seed."""
    update = make_update(graphdef, rest, task, batch_size, **sizes)
    return jax.jit(lambda state, data_key: update(state, data_key, tx))


def compile_step(step: Callable, *args: Any, batch_size: int, members: int = 1) -> Callable:
    """``step`` (jit-compiled) compiled for ``args`` with ``machine.compiler_options``."""
    return step.lower(*args).compile(machine.compiler_options(batch_size, members))


# Training fields that do not shape the compiled update: the budgets, logging, the recovery
# rules, the validation sets' sizes, and the seed (the data key and the parameters are the
# update's arguments).
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
