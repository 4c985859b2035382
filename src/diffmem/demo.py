"""Pretrained models shipped inside the package, and the demo that runs one.

    model, config, info = diffmem.load_pretrained("copy")
    model, config, info = diffmem.load_pretrained("copy", model="dnc")  # another shipped kind
    result = diffmem.demo.run("copy", seed=7)  # one fresh sequence beyond the training range

Each model in ``weights/`` is a diffmem checkpoint without optimiser state, exported by
``experiments/export_pretrained.py`` from a run that reached its task's target; its header's
``pretrained`` entry holds the command that trained it and its measured figures. Only tasks
whose run reached the target have one. A task may ship several model kinds: its default, the
one loaded when no model is named, is ``TASK.safetensors``; any other is
``TASK-MODEL.safetensors`` (e.g. ``copy-dnc.safetensors``). A file's task and model kind are
read from its header's configuration, not from its name.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from diffmem import checkpoint, losses, models, plots, tasks
from diffmem.config import Config
from diffmem.trained import load

WEIGHTS = Path(__file__).parent / "weights"
MAX_BYTES = 1_000_000  # each shipped model stays well under 1 MB


def _shipped() -> dict[tuple[str, str], Path]:
    """Every shipped file by (task, model kind), in task order with each task's default first.

    A file's name must agree with its header, so that the name a user reads in ``weights/``
    and the model ``load_pretrained`` returns never differ."""
    found = {}
    for path in sorted(WEIGHTS.glob("*.safetensors")):
        config = checkpoint.read_header(path)["config"]
        task, kind = config["task"], config["model"]["kind"]
        if path.name not in (f"{task}.safetensors", f"{task}-{kind}.safetensors"):
            raise checkpoint.CheckpointError(
                f"{path} holds a model of kind {kind} for {task}: name it {task}.safetensors "
                f"(the task's default) or {task}-{kind}.safetensors")
        if (task, kind) in found:
            raise checkpoint.CheckpointError(
                f"{found[task, kind]} and {path} both hold a model of kind {kind} for {task}; "
                "keep one")
        found[task, kind] = path
    default_first = sorted(found, key=lambda tk: (tk[0], found[tk].stem != tk[0], tk[1]))
    return {tk: found[tk] for tk in default_first}


def available() -> list[tuple[str, str]]:
    """The (task, model kind) pairs with a pretrained model in this installation, sorted by
    task, each task's default model first."""
    return list(_shipped())


def default_model(task: str) -> str | None:
    """The model kind shipped as ``TASK.safetensors`` (loaded when no model is named), or None
    when ``task`` has no pretrained model."""
    return next((kind for (t, kind), path in _shipped().items() if path.stem == task), None)


def describe_available() -> str:
    """What is shipped, for messages: ``copy (ntm-lstm, dnc), ...``, the default first."""
    by_task: dict[str, list[str]] = {}
    for task, kind in available():
        by_task.setdefault(task, []).append(kind)
    return ", ".join(f"{task} ({', '.join(kinds)})" for task, kinds in by_task.items())


def pretrained_path(task: str, model: str | None = None) -> Path:
    """The shipped checkpoint of ``model`` (a model kind; None: the task's default) for
    ``task``; a clear error, naming what is shipped, when there is none."""
    if task not in tasks.names():
        raise ValueError(f"unknown task {task!r}; the tasks are: {', '.join(tasks.names())}")
    if model is not None:
        models.get(model)  # an unknown kind is a typo, not a missing file
    shipped = _shipped()
    have = describe_available() or "none (the package's weights/ folder is missing)"
    if model is None:
        path = WEIGHTS / f"{task}.safetensors"
        if path in shipped.values():
            return path
        if not any(t == task for t, _ in shipped):
            raise ValueError(
                f"there is no pretrained model for {task!r}: none of our runs reached its "
                f"target (README, results table). Pretrained models exist for: {have}. Train "
                f"one with `diffmem train {task}`")
        raise ValueError(  # only by hand: the export writes the default first
            f"{task!r} has pretrained models but no default ({task}.safetensors); name one "
            f"with --model. Pretrained models exist for: {have}")
    if (task, model) not in shipped:
        raise ValueError(
            f"there is no pretrained {model} for {task!r}; pretrained models exist for: {have}. "
            f"Train one with `diffmem train {task} --model {model}`")
    return shipped[task, model]


def export_path(task: str, model: str) -> Path:
    """Where ``experiments/export_pretrained.py`` writes a ``model`` for ``task``: the task's
    default file ``TASK.safetensors`` while the task ships no model or its default is this
    kind (which the export replaces), otherwise ``TASK-MODEL.safetensors``, so that exporting
    another kind never changes what ``diffmem demo TASK`` runs."""
    default = default_model(task)
    if default is None or default == model:
        return WEIGHTS / f"{task}.safetensors"
    return WEIGHTS / f"{task}-{model}.safetensors"


def load_pretrained(task: str, model: str | None = None):
    """The pretrained ``model`` (a model kind; None: the task's default) for ``task``, its
    configuration, and where it came from.

    Returns ``(model, config, info)``; ``info`` holds the training command, the sequences it
    saw and its validation and generalisation figures."""
    path = pretrained_path(task, model)
    module, config = load(path)
    header = checkpoint.read_header(path)
    return module, config, header.get("pretrained", {})


class DemoResult(NamedTuple):
    model: Any  # the model (NTM, DNC, ...)
    config: Config
    info: dict[str, Any]  # the pretrained model's provenance (``load_pretrained``)
    size: dict[str, Any]
    seed: int
    example: Any  # diffmem.plots.Example
    metrics: dict[str, float]  # bits, bit_errors, wrong_bit_fraction (and optimal_bits)


def run(task: str, size: dict[str, Any] | None = None, seed: int | None = None,
        model: str | None = None) -> DemoResult:
    """Run the pretrained ``model`` (a model kind; None: the task's default) of ``task`` on one
    fresh sequence at ``size`` (by default the task's ``example_size``, beyond the training
    range). ``seed`` None draws a new one."""
    module, config, info = load_pretrained(task, model)
    task_obj = tasks.get(task)
    size = dict(task_obj.example_size if size is None else size)
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31 - 1))
    example = plots.run_example(module, task_obj, size, seed)
    batch, logits = example.batch, example.logits
    bits = float(losses.sequence_cross_entropy(logits, batch.targets, batch.mask)[0]) / math.log(2)
    errors = float(losses.sequence_bit_errors(logits, batch.targets, batch.mask)[0])
    outputs = float(np.sum(np.asarray(batch.mask))) * batch.targets.shape[-1]
    metrics = {"bits": bits, "bit_errors": errors, "wrong_bit_fraction": errors / outputs}
    optimum = task_obj.optimal_bits(batch)
    if optimum is not None:
        metrics["optimal_bits"] = float(jax.device_get(optimum)[0])
    return DemoResult(module, config, info, size, seed, example, metrics)
