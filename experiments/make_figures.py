"""Draw the figures of docs/ from the shipped pretrained models and the reproduction records.

    python experiments/make_figures.py            # writes docs/figures/*.png

Memory-use and generalisation figures run the pretrained models in src/diffmem/weights/ (the
same as `diffmem demo TASK --seed 0` and `diffmem plot`); learning curves come from the
validation points stored in results/reproduce/*.json. Nothing is trained.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from diffmem import demo, plots, tasks

OUT = Path("docs/figures")
RECORDS = Path("results/reproduce")
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


def save(fig, name: str) -> None:
    path = plots.save(fig, OUT / name, dpi=80)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for task_name in ("copy", "repeat-copy", "associative-recall"):
        model, _, info = demo.load_pretrained(task_name)
        task = tasks.get(task_name)
        save(plots.memory_figure(model, task, task.example_size, seed=0),
             f"{task_name}-memory.png")
        # The errors against size are those of the model's reproduction record.
        rows = json.loads(Path(info["record"]).read_text())["summary"]["generalisation"]
        save(plots.generalisation_figure(model, task, [r["size"] for r in rows], rows, seed=0),
             f"{task_name}-generalisation.png")
    for task_name, kind in demo.available():  # the shipped DNCs: their memory use
        if kind == "dnc":
            model, _, _ = demo.load_pretrained(task_name, model=kind)
            task = tasks.get(task_name)
            save(plots.memory_figure(model, task, task.example_size, seed=0),
                 f"{task_name}-dnc-memory.png")
    for task_name, runs in CURVES:
        curves = {label: json.loads((RECORDS / f"{record}.json").read_text())["curve"]
                  for record, label in runs}
        save(plots.learning_curves(curves, title=f"{task_name}: learning curves (CPU runs)"),
             f"{task_name}-curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
