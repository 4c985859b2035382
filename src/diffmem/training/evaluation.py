"""Judging a model: fixed, seeded sets of sequences scored as the task says
(``Task.eval_totals`` and ``Task.eval_figures``), the validation set and the generalisation
check of every log point, and the choice of the best log point.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from diffmem import programs
from diffmem.config import Config
from diffmem.models import for_evaluation
from diffmem.tasks import Batch, Task
from diffmem.training.step import forward

# The validation and evaluation sets are seeded independently of the training seed, so that
# every run is judged on the same sequences.
VALIDATION_SEED = 2014
EVALUATION_SEED = 1410
EVAL_BATCH = 256


def make_eval_step(graphdef, rest, task: Task) -> Callable[[nnx.State, Batch], dict]:
    """Jit-compiled ``task.eval_totals`` of the model on one batch; one function per model
    structure, constants and task in the process (``diffmem.programs``), so that its compiled
    programs serve every run and evaluation of such a model."""
    return programs.get(("eval step", graphdef, programs.fingerprint(rest), task.identity()),
                        lambda: _make_eval_step(graphdef, rest, task))


def _make_eval_step(graphdef, rest, task: Task) -> Callable[[nnx.State, Batch], dict]:
    @jax.jit
    def eval_step(params, batch: Batch):
        return task.eval_totals(forward(graphdef, rest, params, batch), batch)

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


def evaluate_batches(task: Task, eval_step: Callable, params, batches: list[Batch]
                     ) -> dict[str, Any]:
    """The task's figures (``Task.eval_figures``) of the model over ``batches``."""
    totals: dict[str, float] = {}
    for batch in batches:
        for k, v in jax.device_get(eval_step(params, batch)).items():
            totals[k] = totals.get(k, 0.0) + float(v)
    return task.eval_figures(totals)


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
    eval_step = eval_step or make_eval_step(graphdef, rest, task)
    sets = [fixed_batches(task, count, size_seed(seed, size), **size) for size in sizes]
    # Right-pad every set to the longest T (mask 0): outputs at real steps do not depend on
    # later steps, and one compiled function then serves all sizes.
    T = max(b.inputs.shape[1] for batches in sets for b in batches)
    rows = []
    for size, batches in zip(sizes, sets):
        result = evaluate_batches(task, eval_step, params, [_pad_time(b, T) for b in batches])
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


class Check(NamedTuple):
    """The generalisation check: fixed sets at sizes beyond the training range, validated at
    every log point on the memory the model is evaluated with (``Task.generalisation_check``)."""

    sets: list[tuple[str, float, list[Batch]]]  # (size label, largest wrong fraction, batches)
    eval_step: Callable


class Validation(NamedTuple):
    """The fixed validation set and what a run must score on it."""

    task: Task
    batches: list[Batch]
    eval_step: Callable
    optimum: float | None  # the task's optimal predictor's bits per sequence, if it has one
    target: float  # bits per sequence to get below
    check: Check | None = None  # the generalisation check, if the task and config have one

    def __call__(self, params) -> dict[str, Any]:
        """The figures of ``params`` on the validation set."""
        return evaluate_batches(self.task, self.eval_step, params, self.batches)

    def run_check(self, params) -> list[dict[str, Any]]:
        """The check's figures at each size, and whether the size passed (none without one)."""
        if self.check is None:
            return []
        rows = []
        for label, tolerance, batches in self.check.sets:
            r = evaluate_batches(self.task, self.check.eval_step, params, batches)
            rows.append({"label": label, "bits": r["bits"], "wrong_bit_fraction":
                         r["wrong_bit_fraction"], "tolerance": tolerance,
                         "passed": bool(r["wrong_bit_fraction"] <= tolerance)})
        return rows


def make_validation(task: Task, config: Config, model: nnx.Module) -> Validation:
    """The run's validation set (the task's own, ``Task.validation_set``, or
    ``train.val_size`` sequences drawn from VALIDATION_SEED), its target and its
    generalisation check."""
    graphdef, _, rest = nnx.split(model, nnx.Param, ...)
    batches = task.validation_set(config.train.val_size, VALIDATION_SEED)
    if batches is None:
        batches = fixed_batches(task, config.train.val_size, VALIDATION_SEED)
    optimum = optimal_bits(task, batches)
    return Validation(task, batches, make_eval_step(graphdef, rest, task), optimum,
                      task.target(optimum), make_check(task, config, model))


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
    return Check(sets, make_eval_step(graphdef, rest, task))


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
