"""Figures in the style of the NTM paper, drawn with matplotlib (Agg backend, PNG files).

- ``memory_figure``: one sequence's inputs, targets and outputs, and every head's add vectors
  and weightings over time (paper Figures 6, 8, 13, 16); for a DNC also its usage, gates, read
  modes and final link matrix.
- ``learning_curves``: bits per sequence against sequences seen, training and validation, for
  several runs (paper Figures 3, 7, 9, 15).
- ``generalisation_figure``: targets against outputs at several sizes, and the error against
  size (paper Figures 4, 5, 10, 11).

Colour maps are perceptually uniform and readable with colour-blind vision (``cividis`` for
values, ``viridis`` for weightings). Every panel has a title and labelled axes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from diffmem import rundir, tasks  # noqa: E402
from diffmem.tasks import Batch, Task  # noqa: E402
from diffmem.trained import load  # noqa: E402
from diffmem.training import evaluate  # noqa: E402

VALUES, WEIGHTS = "cividis", "viridis"
# Line colours for overlaid runs: the Okabe-Ito palette, distinguishable with any common form
# of colour blindness.
LINES = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
FIGURES = ("memory", "curves", "generalisation")


def save(fig: Figure, path: str | Path | BinaryIO, dpi: int = 100):
    """Write ``fig`` as PNG to ``path`` (a file name, written atomically, or a binary stream),
    free it, and return ``path``."""
    is_file_name = isinstance(path, (str, Path))
    target = io.BytesIO() if is_file_name else path
    fig.savefig(target, format="png", dpi=dpi)
    plt.close(fig)
    return rundir.atomic_write(path, target.getvalue()) if is_file_name else path


class Example(NamedTuple):
    """One sequence of a task and what a model did with it."""

    batch: Batch  # a batch of one sequence
    logits: jax.Array  # (1, T, C_out)
    trace: Any  # the memory trace, (1, T, heads, ...) per quantity; None without a memory


def has_memory(model) -> bool:
    """Whether ``model`` has an external memory to draw. Such a model's class sets
    ``has_memory = True``, and ``model(inputs, return_trace=True)`` returns ``(logits, state,
    trace)`` with a trace (a named tuple, e.g. ``diffmem.ntm.Trace``) of at least these fields:
    ``read_weights`` (B, T, R, N), ``write_weights`` (B, T, W, N) and ``reads`` (B, T, R, M).
    These are drawn when present (a DNC's trace, ``diffmem.dnc.DNCTrace``, has them all):
    ``add`` (B, T, W, M), the vectors written; ``usage`` (B, T, N); ``allocation_gate`` and
    ``write_gate`` (B, T); ``free_gates`` (B, T, R); ``read_modes`` (B, T, R, 3: backward,
    content, forward); ``link`` (B, N, N), the link matrix after the last step. Other fields
    are ignored."""
    return bool(getattr(model, "has_memory", False))


def _sample_one(task: Task, size: dict[str, Any], seed: int) -> Batch:
    """One sequence of ``task`` at ``size``, drawn with ``seed``."""
    return task.sample_compiled(jax.random.key(seed), 1, **size)


def run_example(model, task: Task, size: dict[str, Any], seed: int = 0) -> Example:
    """Draw one sequence of ``task`` at ``size`` (seeded) and run ``model`` on it, with the
    memory trace when the model has a memory (``has_memory``)."""
    batch = _sample_one(task, size, seed)
    if has_memory(model):
        logits, _, trace = model(batch.inputs, return_trace=True)
    else:
        (logits, _), trace = model(batch.inputs), None
    return Example(batch, logits, trace)


MEMORY_ROW = "memory row"  # the y label of panels over memory rows, drawn as a band of rows
READ_MODES = ("backward", "content", "forward")  # the order of a trace's read_modes


class _Panel(NamedTuple):
    """One panel of the memory figure: a heatmap of ``values`` (T, K) over the time axis, its
    K rows named by ``names`` when given (numbered otherwise)."""

    title: str
    values: np.ndarray
    ylabel: str
    cmap: str = VALUES
    limits: tuple[float | None, float | None] = (None, None)
    names: tuple[str, ...] = ()


def _label_rows(axis, rows: np.ndarray):
    """Label ``axis``, whose positions 0, 1, ... show memory ``rows``, with the rows' numbers."""
    axis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    axis.set_major_formatter(FuncFormatter(
        lambda y, _: str(rows[int(y)]) if 0 <= y < len(rows) and y == int(y) else ""))


def _gate_panel(trace) -> _Panel | None:
    """The DNC's gates over time, a row each: allocation and write (the write head's), then
    each read head's free gate; None when the trace has none of them. A heatmap rather than
    lines, so that it lines up with the other panels and their colour bars."""
    gates = [(name, np.asarray(gate[0])) for name, gate in (
        ("allocation", getattr(trace, "allocation_gate", None)),
        ("write", getattr(trace, "write_gate", None))) if gate is not None]
    free = getattr(trace, "free_gates", None)
    if free is not None:
        gates += [(f"free, read {h}", np.asarray(free[0, :, h])) for h in range(free.shape[2])]
    if not gates:
        return None
    names, values = zip(*gates)
    return _Panel("gates: allocation and write (write head), free (read heads)",
                  np.stack(values, axis=1), "gate", WEIGHTS, (0.0, 1.0), names)


def memory_figure(model, task: Task, size: dict[str, Any], seed: int = 0,
                  example: Example | None = None) -> Figure:
    """What a model's memory (``has_memory``) does on one sequence of ``task`` at ``size``: a
    column of panels sharing the time axis, inputs, targets and outputs first, then per write
    head its add vectors (when the trace has them) and write weighting, then per read head its
    read weighting and the vectors it read. Weighting panels show the band of memory rows the
    heads visit (which may wrap past the last row), labelled with the rows' numbers.

    A DNC's trace adds, for each field it has (see ``has_memory``): usage after the write
    weighting (its rows join the band), then the gates (allocation, write and free), each read
    head's read modes above its read weighting, and below the time panels the link matrix
    after the last step, over the same band of rows.

    ``example`` (from ``run_example``) reuses a sequence already run; otherwise one is drawn
    with ``seed``."""
    if not has_memory(model):
        raise ValueError(
            f"the memory figure shows an external memory, and this model is a "
            f"{type(model).__name__} without one; use the learning-curve or generalisation figure"
        )
    batch, logits, trace = example or run_example(model, task, size, seed)
    # The task says how its outputs read as channels in [0, 1] (a sigmoid each for bits).
    targets, probabilities = task.display(logits, batch)
    outputs = np.asarray(probabilities[0]) * np.asarray(batch.mask[0])[:, None]
    squash = "sigmoid" if batch.targets.ndim == 3 else "softmax"
    W, R = trace.write_weights.shape[2], trace.read_weights.shape[2]
    # Targets and outputs share the 0..1 scale, so that a faint output reads as faint.
    panels = [_Panel("inputs", np.asarray(batch.inputs[0]), "input channel"),
              _Panel("targets", np.asarray(targets[0]), "output channel", limits=(0.0, 1.0)),
              _Panel(f"outputs ({squash}, masked)", outputs, "output channel",
                     limits=(0.0, 1.0))]
    add = getattr(trace, "add", None)
    for h in range(W):
        if add is not None:
            panels.append(_Panel(f"write head {h}: add vectors", np.asarray(add[0, :, h]),
                                 "memory column"))
        panels.append(_Panel(f"write head {h}: write weighting",
                             np.asarray(trace.write_weights[0, :, h]), MEMORY_ROW, WEIGHTS))
    usage = getattr(trace, "usage", None)
    if usage is not None:
        panels.append(_Panel("usage", np.asarray(usage[0]), MEMORY_ROW, WEIGHTS))
    gates = _gate_panel(trace)
    if gates is not None:
        panels.append(gates)
    modes = getattr(trace, "read_modes", None)
    for h in range(R):
        if modes is not None:
            panels.append(_Panel(f"read head {h}: read modes", np.asarray(modes[0, :, h]),
                                 "read mode", WEIGHTS, (0.0, 1.0), READ_MODES))
        panels.append(_Panel(f"read head {h}: read weighting",
                             np.asarray(trace.read_weights[0, :, h]), MEMORY_ROW, WEIGHTS))
        panels.append(_Panel(f"read head {h}: read vectors", np.asarray(trace.reads[0, :, h]),
                             "memory column"))
    weights = [np.asarray(trace.write_weights[0]), np.asarray(trace.read_weights[0])]
    if usage is not None:  # a row the heads have left may still hold what they wrote
        weights.append(np.asarray(usage[0])[:, None])
    rows = _rows_in_use(np.concatenate(weights, axis=1))
    link = getattr(trace, "link", None)

    height = 1.6 if len(panels) <= 10 else 1.2  # per panel; many heads make a tall figure
    ratios = [height] * len(panels) + ([4.0] if link is not None else [])
    fig = plt.figure(figsize=(10, sum(ratios) + 1), constrained_layout=True)
    grid = fig.add_gridspec(len(ratios), 1, height_ratios=ratios)
    axes: list = []
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(grid[i], sharex=axes[0] if axes else None)
        axes.append(ax)
        _draw_panel(fig, ax, panel, rows)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time step")
    if link is not None:
        _draw_link(fig, fig.add_subplot(grid[-1]), np.asarray(link[0]), rows)
    fig.suptitle(f"{task.name}, {task.describe_size(size)}: memory use")
    return fig


def _draw_panel(fig: Figure, ax, panel: _Panel, rows: np.ndarray):
    """Draw one time panel on ``ax``, showing only memory ``rows`` of a memory-row panel."""
    title, values, ylabel, cmap, (vmin, vmax), names = panel
    if ylabel == MEMORY_ROW:  # weightings and usage: show only the rows in use
        values, vmin, vmax = values[:, rows], 0.0, 1.0
        _label_rows(ax.yaxis, rows)
    image = ax.imshow(values.T, aspect="auto", origin="lower", cmap=cmap,
                      interpolation="nearest", vmin=vmin, vmax=vmax)
    if names:
        ax.set_yticks(range(len(names)), names)
    elif ylabel != MEMORY_ROW:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(image, ax=ax, pad=0.01)
    ax.set_title(title)
    ax.set_ylabel(ylabel)


def _draw_link(fig: Figure, ax, link: np.ndarray, rows: np.ndarray):
    """The DNC's link matrix (N, N) on ``ax``, over memory ``rows`` only."""
    image = ax.imshow(link[np.ix_(rows, rows)], origin="lower", cmap=WEIGHTS,
                      interpolation="nearest", vmin=0.0, vmax=1.0)
    _label_rows(ax.xaxis, rows)
    _label_rows(ax.yaxis, rows)
    ax.set_title("link matrix after the last step (L[i, j]: row i written right after row j)")
    ax.set_xlabel("memory row j (written first)")
    ax.set_ylabel("memory row i (written next)")
    # The matrix is square, narrower than its slot: a colour bar placed by the layout would
    # sit at the slot's edge, so it is placed beside the matrix itself.
    fig.colorbar(image, cax=ax.inset_axes([1.03, 0.0, 0.04, 1.0]))


def _rows_in_use(weights: np.ndarray, threshold: float = 0.25, margin: int = 3) -> np.ndarray:
    """The memory rows to show, in order: the circular band of rows that any head weights
    above ``threshold`` at any step, widened by ``margin`` rows (all rows if that is most of
    the memory). A band may wrap past the last row, as the heads' shifts do."""
    N = weights.shape[-1]
    used = weights.reshape(-1, N).max(axis=0) > threshold
    if not used.any():
        return np.arange(N)
    # The band is everything outside the longest circular run of unused rows.
    best_len, best_end, run = 0, 0, 0
    for i in range(2 * N):
        run = 0 if used[i % N] else run + 1
        if run > best_len:
            best_len, best_end = min(run, N), i
    start = best_end + 1 - margin
    length = N - best_len + 2 * margin
    if length > 0.75 * N:
        return np.arange(N)
    return (start + np.arange(length)) % N


def _floor(value: float | None) -> float:
    """A value for a log-scale axis: None (a non-finite value in the records) becomes a gap,
    and 0 the axis' floor of 1e-4."""
    return np.nan if value is None else max(value, 1e-4)


def learning_curves(runs: dict[str, list[dict[str, Any]]], title: str = "") -> Figure:
    """Bits per sequence against sequences seen: training (thin) and validation (thick) for
    each labelled run, on a log scale."""
    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    for i, (label, records) in enumerate(runs.items()):
        x = [r["sequences"] for r in records]
        for key, width, style, suffix in (("bits", 1.0, ":", "training"),
                                          ("val_bits", 2.0, "-", "validation")):
            y = [_floor(r[key]) for r in records]
            ax.plot(x, y, style, linewidth=width, color=LINES[i % len(LINES)],
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
    """Targets above outputs for one sequence at each size (paper Figures 4 and 5), and, when
    ``rows`` (from ``diffmem.training.evaluate``) are given, bits per sequence against size."""
    n = len(sizes) + (1 if rows else 0)
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.4 * n + 1), squeeze=False,
                             constrained_layout=True)
    # One sequence per size, right-padded to a common length and run as one batch: outputs
    # at real steps do not depend on later steps, and one compilation serves every size.
    examples = [_sample_one(task, size, seed) for size in sizes]
    T = max(b.inputs.shape[1] for b in examples)
    pad = lambda a: np.pad(np.asarray(a),  # noqa: E731
                           [(0, 0), (0, T - a.shape[1])] + [(0, 0)] * (a.ndim - 2))
    inputs, all_targets, masks = (np.concatenate([pad(getattr(b, f)) for b in examples])
                                  for f in ("inputs", "targets", "mask"))
    logits, *_ = model(inputs)
    all_targets, probabilities = map(np.asarray, task.display(
        logits, Batch(inputs, all_targets, masks)))
    for i, (ax, size) in enumerate(zip(axes[:, 0], sizes)):
        mask = masks[i].astype(bool)
        targets, outputs = all_targets[i][mask], probabilities[i][mask]
        C = targets.shape[1]
        gap = np.full((len(targets), 1), np.nan)
        # Outputs in the lower band, targets in the upper one, one column per output step.
        ax.imshow(np.concatenate([outputs, gap, targets], axis=1).T, aspect="auto",
                  origin="lower", cmap=VALUES, interpolation="nearest", vmin=0, vmax=1)
        ax.set_yticks([(C - 1) / 2, C + 1 + (C - 1) / 2], ["outputs", "targets"])
        ax.set_title(f"{task.describe_size(size)}: targets (top) and outputs (bottom)")
        ax.set_xlabel("output step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("channels")
    if rows:
        ax = axes[-1, 0]
        labels = [r["label"] for r in rows]
        ax.plot(range(len(rows)), [_floor(r["bits"]) for r in rows], "o-", label="model",
                color=LINES[0])
        if any("optimal_bits" in r for r in rows):
            ax.plot(range(len(rows)), [_floor(r.get("optimal_bits")) for r in rows], "s--",
                    label="optimal predictor", color=LINES[1])
        ax.set_yscale("log")
        ax.set_xticks(range(len(rows)), labels)
        ax.set_xlabel("size")
        ax.set_ylabel("bits per sequence")
        ax.set_title("error against size")
        ax.legend()
    fig.suptitle(f"{task.name}: generalisation")
    return fig



def run_label(run_dir: str | Path) -> str:
    """A legend label for a run: its model, preset and seed."""
    c = rundir.read_config(run_dir)
    return f"{c.model.kind} ({c.preset}, seed {c.train.seed})"


def run_figure(name: str, run_dir: str | Path, *, size: dict[str, Any] | None = None,
               sizes: list[dict[str, Any]] | None = None, compare: tuple = (),
               seed: int = 0) -> Figure:
    """Figure ``name`` (one of FIGURES) for the run in ``run_dir``.

    - memory: one sequence at ``size`` (default: the task's example size, beyond training).
    - curves: this run's learning curves, overlaid with those of the ``compare`` run dirs.
    - generalisation: examples and error at ``sizes`` (default: the task's evaluation sizes,
      with the errors from the run's summary.json when it has them).
    """
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; the figures are: {', '.join(FIGURES)}")
    run_dir = Path(run_dir)
    if name == "curves":
        runs: dict[str, list[dict[str, Any]]] = {}
        for d in (run_dir, *compare):
            label = run_label(d)
            runs[label if label not in runs else f"{label} {Path(d).name}"] = rundir.read_metrics(d)
        return learning_curves(runs, title=f"{rundir.read_config(run_dir).task}: learning curves")
    model, config = load(run_dir)
    task = tasks.get(config.task)
    if name == "memory":
        return memory_figure(model, task, task.example_size if size is None else size, seed)
    rows = None
    if sizes is None:
        sizes = list(task.eval_sizes)
        summary = rundir.read_summary(run_dir)
        if summary is not None:
            rows = summary["generalisation"]
    if rows is None:
        rows = evaluate(model, task, sizes, count=config.train.eval_count)
    return generalisation_figure(model, task, sizes, rows, seed)
