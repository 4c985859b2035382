"""Pretrained models shipped inside the package, and the demo that runs one.

    model, config, info = diffmem.load_pretrained("copy")
    result = diffmem.demo.run("copy", seed=7)  # one fresh sequence beyond the training range

Each model in ``weights/`` is a diffmem checkpoint without optimiser state, exported by
``experiments/export_pretrained.py`` from a run that reached its task's target; its header's
``pretrained`` entry holds the command that trained it and its measured figures. Only tasks
whose run reached the target have one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from diffmem import checkpoint, losses, tasks
from diffmem.config import Config

WEIGHTS = Path(__file__).parent / "weights"
MAX_BYTES = 1_000_000  # each shipped model stays well under 1 MB


def available() -> list[str]:
    """The tasks with a pretrained model in this installation."""
    return sorted(p.stem for p in WEIGHTS.glob("*.safetensors"))


def pretrained_path(task: str) -> Path:
    """The shipped checkpoint for ``task``; a clear error when there is none."""
    if task not in tasks.names():
        raise ValueError(f"unknown task {task!r}; the tasks are: {', '.join(tasks.names())}")
    path = WEIGHTS / f"{task}.safetensors"
    if not path.is_file():
        have = ", ".join(available()) or "none (the package's weights/ folder is missing)"
        raise ValueError(
            f"there is no pretrained model for {task!r}: none of our runs reached its target "
            f"(README, results table). Pretrained models exist for: {have}. Train one with "
            f"`diffmem train {task}`"
        )
    return path


def load_pretrained(task: str):
    """The pretrained model for ``task``, its configuration, and where it came from.

    Returns ``(model, config, info)``; ``info`` holds the training command, the sequences it
    saw and its validation and generalisation figures."""
    from diffmem.models import load

    path = pretrained_path(task)
    model, config = load(path)
    _, header = checkpoint.read(path)
    return model, config, header.get("pretrained", {})


class DemoResult(NamedTuple):
    model: Any  # NTM
    config: Config
    info: dict[str, Any]  # the pretrained model's provenance (``load_pretrained``)
    size: dict[str, Any]
    seed: int
    example: Any  # diffmem.plots.Example
    metrics: dict[str, float]  # bits, bit_errors, wrong_bit_fraction (and optimal_bits)


def run(task: str, size: dict[str, Any] | None = None, seed: int | None = None) -> DemoResult:
    """Run the pretrained model of ``task`` on one fresh sequence at ``size`` (by default the
    task's ``example_size``, beyond the training range). ``seed`` None draws a new one."""
    from diffmem import plots

    model, config, info = load_pretrained(task)
    task_obj = tasks.get(task)
    size = dict(task_obj.example_size if size is None else size)
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31 - 1))
    example = plots.run_example(model, task_obj, size, seed)
    batch, logits = example.batch, example.logits
    bits = float(losses.sequence_cross_entropy(logits, batch.targets, batch.mask)[0]) / math.log(2)
    errors = float(losses.sequence_bit_errors(logits, batch.targets, batch.mask)[0])
    outputs = float(np.sum(np.asarray(batch.mask))) * batch.targets.shape[-1]
    metrics = {"bits": bits, "bit_errors": errors, "wrong_bit_fraction": errors / outputs}
    optimum = task_obj.optimal_bits(batch)
    if optimum is not None:
        metrics["optimal_bits"] = float(jax.device_get(optimum)[0])
    return DemoResult(model, config, info, size, seed, example, metrics)
