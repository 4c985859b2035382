"""Draw the figures of docs/ from the shipped pretrained models and the reproduction records.

    python experiments/make_figures.py                  # writes docs/figures/*.png
    python experiments/make_figures.py --tasks copy     # one task's figures only

Memory-use and generalisation figures run the pretrained models in src/diffmem/weights/ (the
same as `diffmem demo TASK --seed 0` and `diffmem plot`); learning curves come from the
validation points stored in results/reproduce/*.json, and the scaling figure (`--tasks
scaling`) from the `diffmem bench --json` records in results/dnc-scale/. Nothing is trained.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from diffmem import demo, plots, tasks

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "figures"
RECORDS = ROOT / "results" / "reproduce"
# The NTMs whose memory use and generalisation are drawn (each task's default shipped model).
NTM_TASKS = ("copy", "repeat-copy", "associative-recall")
SCALING = ROOT / "results" / "dnc-scale"
# The scaling figure: (bench record, legend label), at batch SCALING_BATCH.
SCALING_RUNS = [("ntm.json", "NTM"), ("dnc-dense.json", "DNC, dense link"),
                ("dnc-sparse-k8.json", "DNC, sparse link (K = 8)"),
                ("sam.json", "SAM (K = 4 rows a read)"),
                ("sdnc.json", "sparse DNC (K = 4, K_L = 8)")]
SCALING_BATCH = 1
# Rae et al. 2016's figures, drawn beside the scaling records as crosses (their sizes and CPU,
# not these): (label, rows, ms per step or None, MiB or None). Time: a forward and backward
# step at a million slots; memory: 64K words over 100 steps, the whole sequence.
RAE_POINTS = [("Rae et al.: SAM", 2**20, 7.0, None), ("Rae et al.: NTM", 2**20, 12_000.0, None),
              ("Rae et al.: SAM", 2**16, None, 7.8), ("Rae et al.: NTM", 2**16, None, 29 * 1024)]
# Validation curves of the DNC's default with the dense and the sparse link, one panel per
# task (``experiments/curves.py`` records in the same folder), drawn with the scaling figure.
LINK_CURVES = {
    "copy": [("copy-dense-seed0.json", "dense link"), ("copy-k8-seed0.json", "sparse link, K = 8")],
    "repeat-copy": [("repeat-copy-dense-seed0.json", "dense link"),
                    ("repeat-copy-k8-seed0.json", "sparse link, K = 8")],
}
# Learning curves: (task, [(record, legend label)]).
CURVES = [
    ("copy", [("copy-ntm-lstm-default", "NTM, LSTM controller"),
              ("copy-ntm-ff-default", "NTM, feed-forward controller"),
              ("copy-lstm-default", "LSTM")]),
    ("associative-recall", [
        ("associative-recall-ntm-ff-paper", "NTM, feed-forward (paper training)"),
        ("associative-recall-ntm-lstm-paper", "NTM, LSTM (paper training)"),
        ("associative-recall-lstm-default", "LSTM")]),
]


def save(fig, out: Path, name: str) -> None:
    path = plots.save(fig, out / name, dpi=80)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=OUT, help="folder for the figures")
    p.add_argument("--tasks", help="comma-separated tasks to draw (default: every figure)")
    args = p.parse_args(argv)
    wanted = set(args.tasks.split(",")) if args.tasks else None
    keep = lambda task_name: wanted is None or task_name in wanted  # noqa: E731
    args.out.mkdir(parents=True, exist_ok=True)
    for task_name in filter(keep, NTM_TASKS):
        model, _, info = demo.load_pretrained(task_name)
        task = tasks.get(task_name)
        save(plots.memory_figure(model, task, task.example_size, seed=0), args.out,
             f"{task_name}-memory.png")
        # The errors against size are those of the model's reproduction record (its path is
        # relative to the repository).
        record = ROOT / info["record"]
        rows = json.loads(record.read_text())["summary"]["generalisation"]
        save(plots.generalisation_figure(model, task, [r["size"] for r in rows], rows, seed=0),
             args.out, f"{task_name}-generalisation.png")
    for task_name, kind in demo.available():  # the shipped DNCs: their memory use
        if kind == "dnc" and keep(task_name):
            model, _, _ = demo.load_pretrained(task_name, model=kind)
            task = tasks.get(task_name)
            save(plots.memory_figure(model, task, task.example_size, seed=0), args.out,
                 f"{task_name}-dnc-memory.png")
    if keep("scaling"):
        save(scaling_figure(SCALING), args.out, "scaling.png")
        save(link_curves_figure(SCALING), args.out, "dnc-sparse-link.png")
    for task_name, runs in CURVES:
        if keep(task_name):
            curves = {label: json.loads((RECORDS / f"{record}.json").read_text())["curve"]
                      for record, label in runs}
            save(plots.learning_curves(curves, title=f"{task_name}: learning curves (CPU runs)"),
                 args.out, f"{task_name}-curves.png")
    return 0


def scaling_figure(folder: Path):
    """Time and planned memory of a training step against the memory's rows, log-log, one
    line per model, from the bench records in ``folder`` at batch ``SCALING_BATCH``."""
    import matplotlib.pyplot as plt

    fig, (time_ax, memory_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, label in SCALING_RUNS:
        rows = [r for r in json.loads((folder / name).read_text())
                if r["batch_size"] == SCALING_BATCH]
        rows.sort(key=lambda r: r["memory_rows"])
        n = [r["memory_rows"] for r in rows]
        time_ax.loglog(n, [r["step_ms"] / SCALING_BATCH for r in rows], "o-", label=label)
        memory_ax.loglog(n, [r["peak_bytes"] / 2**20 / SCALING_BATCH for r in rows], "o-",
                         label=label)
    for ax, index in ((time_ax, 2), (memory_ax, 3)):
        for label, color in (("Rae et al.: SAM", "tab:red"), ("Rae et al.: NTM", "tab:blue")):
            points = [(p[1], p[index]) for p in RAE_POINTS if p[0] == label and p[index]]
            ax.loglog(*zip(*points), "x", color=color, markersize=9, mew=2,
                      label=f"{label} (their sizes)")
    first = json.loads((folder / SCALING_RUNS[0][0]).read_text())[0]
    time_ax.set(xlabel="memory rows N", ylabel="ms per time step and sequence",
                title="training step (forward + backward)")
    memory_ax.set(xlabel="memory rows N", ylabel="MiB per sequence",
                  title="memory XLA plans for the update")
    ticks = []  # the sizes measured, at least 8 times apart, so that their labels fit
    for n in sorted({n for line in time_ax.get_lines() for n in line.get_xdata()}):
        if not ticks or n >= 8 * ticks[-1]:
            ticks.append(n)
    for ax in (time_ax, memory_ax):
        ax.set_xticks(ticks, [f"{n:,}" for n in ticks])
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"W = {first['memory_width']}, R = {first['read_heads']}, LSTM "
                 f"{first['controller_size']}, batch {SCALING_BATCH}, copy length 20; "
                 f"{first['device']}", fontsize=9)
    fig.tight_layout()
    return fig


def link_curves_figure(folder: Path):
    """Validation bits per sequence against sequences seen, a panel per task of
    ``LINK_CURVES`` and a line per record (each one run's ``curve`` of [sequences, validation
    bits, check])."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(LINK_CURVES), figsize=(11, 4), constrained_layout=True)
    for ax, (task_name, records) in zip(axes, LINK_CURVES.items()):
        for name, label in records:
            (run,) = json.loads((folder / name).read_text())["runs"]
            ax.plot([p[0] for p in run["curve"]], [max(p[1], 1e-3) for p in run["curve"]],
                    "o-", markersize=3, label=label)
        ax.axhline(tasks.get(task_name).target_bits, color="gray", linestyle=":",
                   label="target")
        ax.set(yscale="log", xlabel="sequences seen", ylabel="validation bits per sequence",
               title=f"{task_name}, the DNC default (32 rows), seed 0")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    return fig


if __name__ == "__main__":
    sys.exit(main())
