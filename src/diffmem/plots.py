"""Figures in the style of the NTM paper, drawn with matplotlib (Agg backend, PNG files).

- ``memory_figure``: one sequence's inputs, targets and outputs, and every head's add vectors
  and weightings over time (paper Figures 6, 8, 13, 16).
- ``learning_curves``: bits per sequence against sequences seen, training and validation, for
  several runs (paper Figures 3, 7, 9, 15).
- ``generalisation_figure``: targets against outputs at several sizes, and the error against
  size (paper Figures 4, 5, 10, 11).

Colour maps are perceptually uniform and readable with colour-blind vision (``cividis`` for
values, ``viridis`` for weightings). Every panel has a title and labelled axes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from diffmem.tasks import Task  # noqa: E402

VALUES, WEIGHTS = "cividis", "viridis"


def memory_figure(model, task: Task, size: dict[str, Any], seed: int = 0) -> Figure:
    """What the NTM does on one sequence of ``task`` at ``size``: a column of panels sharing
    the time axis, inputs, targets and outputs first, then per write head its add vectors and
    write weighting, then per read head its read weighting."""
    batch = task.sample(jax.random.key(seed), 1, **size)
    logits, _, trace = model(batch.inputs, return_trace=True)
    outputs = np.asarray(jax.nn.sigmoid(logits[0])) * np.asarray(batch.mask[0])[:, None]
    W, R = trace.write_weights.shape[2], trace.read_weights.shape[2]
    panels = [("inputs", np.asarray(batch.inputs[0]), "input channel", VALUES),
              ("targets", np.asarray(batch.targets[0]), "output channel", VALUES),
              ("outputs (sigmoid, masked)", outputs, "output channel", VALUES)]
    # Targets and outputs share the 0..1 scale, so that a faint output reads as faint.
    limits = {"targets": (0.0, 1.0), "outputs (sigmoid, masked)": (0.0, 1.0)}
    for h in range(W):
        panels.append((f"write head {h}: add vectors", np.asarray(trace.add[0, :, h]),
                       "memory column", VALUES))
        panels.append((f"write head {h}: write weighting", np.asarray(trace.write_weights[0, :, h]),
                       "memory row", WEIGHTS))
    for h in range(R):
        panels.append((f"read head {h}: read weighting", np.asarray(trace.read_weights[0, :, h]),
                       "memory row", WEIGHTS))
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.6 * len(panels) + 1), sharex=True,
                             squeeze=False, constrained_layout=True)
    for ax, (title, values, ylabel, cmap) in zip(axes[:, 0], panels):
        vmin, vmax = limits.get(title, (None, None))
        image = ax.imshow(values.T, aspect="auto", origin="lower", cmap=cmap,
                          interpolation="nearest", vmin=vmin, vmax=vmax)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        fig.colorbar(image, ax=ax, pad=0.01)
    axes[-1, 0].set_xlabel("time step")
    fig.suptitle(f"{task.name}, {task.describe_size(size)}: memory use")
    return fig


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The validation points of a run directory (its metrics.jsonl)."""
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def learning_curves(runs: dict[str, list[dict[str, Any]]], title: str = "") -> Figure:
    """Bits per sequence against sequences seen: training (thin) and validation (thick) for
    each labelled run, on a log scale."""
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    colours = plt.get_cmap("tab10")
    for i, (label, records) in enumerate(runs.items()):
        x = [r["sequences"] for r in records]
        for key, width, style, suffix in (("bits", 1.0, ":", "training"),
                                          ("val_bits", 2.0, "-", "validation")):
            y = [np.nan if r[key] is None else max(r[key], 1e-4) for r in records]
            ax.plot(x, y, style, linewidth=width, color=colours(i % 10),
                    label=f"{label}, {suffix}")
    ax.set_yscale("log")
    ax.set_xlabel("sequences seen")
    ax.set_ylabel("bits per sequence")
    ax.set_title(title or "learning curves")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def generalisation_figure(model, task: Task, sizes: list[dict[str, Any]], rows=None,
                          seed: int = 0) -> Figure:
    """Targets above outputs for one sequence at each size, and, when ``rows`` (from
    ``diffmem.train.evaluate``) are given, the bits per sequence against size."""
    n = len(sizes) + (1 if rows else 0)
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.4 * n + 1), squeeze=False,
                             constrained_layout=True)
    for ax, size in zip(axes[:, 0], sizes):
        batch = task.sample(jax.random.key(seed), 1, **size)
        logits, *_ = model(batch.inputs)
        mask = np.asarray(batch.mask[0]).astype(bool)
        targets = np.asarray(batch.targets[0])[mask]
        outputs = np.asarray(jax.nn.sigmoid(logits[0]))[mask]
        gap = np.full((1, targets.shape[1]), np.nan)
        ax.imshow(np.concatenate([targets, gap, outputs]).T, aspect="auto", origin="lower",
                  cmap=VALUES, interpolation="nearest", vmin=0, vmax=1)
        ax.axvline(len(targets), color="white", linewidth=2)
        ax.set_title(f"{task.describe_size(size)}: targets (left) and outputs (right)")
        ax.set_xlabel("output step")
        ax.set_ylabel("channel")
    if rows:
        ax = axes[-1, 0]
        labels = [r["label"] for r in rows]
        ax.plot(range(len(rows)), [r["bits"] for r in rows], "o-", label="model")
        if any("optimal_bits" in r for r in rows):
            ax.plot(range(len(rows)), [r.get("optimal_bits", np.nan) for r in rows], "s--",
                    label="optimal predictor")
        ax.set_xticks(range(len(rows)), labels)
        ax.set_xlabel("size")
        ax.set_ylabel("bits per sequence")
        ax.set_title("error against size")
        ax.legend()
    fig.suptitle(f"{task.name}: generalisation")
    return fig
