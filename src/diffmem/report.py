"""``diffmem report RUN_DIR``: one self-contained HTML page about a run.

The page embeds its figures as PNG data, so it can be mailed or archived as one file. Its
sections: summary, configuration, learning curves, evaluation beyond the training range,
memory use, generalisation examples, and every validation point. The layout is a Jinja2
template (templates/report.html.j2) with autoescaping on.
"""

from __future__ import annotations

import base64
import io
import json
import math
import shlex
import time
from pathlib import Path
from typing import Any

import jinja2

from diffmem import __version__, checkpoint, plots, rundir, tasks
from diffmem.models import get as model_kind
from diffmem.trained import load
from diffmem.training import evaluate

SECTIONS = ("summary", "configuration", "learning-curves", "evaluation", "memory",
            "generalisation", "validation-points")


def _png(fig) -> str:
    buffer = io.BytesIO()
    plots.save(fig, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _number(value: Any, spec: str = ".4f") -> str:
    """``value`` formatted with ``spec``; "-" for a missing or non-finite one (stored as null)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def _flatten(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, value) rows, values written as in config.json (null, true, 0.003)."""
    show = lambda v: v if isinstance(v, str) else json.dumps(v)  # noqa: E731
    rows = []
    for key, value in config.items():
        if isinstance(value, dict):
            rows += [(f"{key}.{k}", show(v)) for k, v in value.items()]
        else:
            rows.append((key, show(value)))
    return rows


def write_report(run_dir: str | Path, out: str | Path | None = None, *,
                 size: dict[str, Any] | None = None, seed: int = 0) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default RUN_DIR/report.html); return its path.

    ``size`` and ``seed`` choose the memory figure's sequence (default: the task's example
    size, beyond the training range)."""
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / "report.html"
    if not out.parent.is_dir():
        raise ValueError(f"cannot write {out}: the folder {out.parent} does not exist")
    config = rundir.read_config(run_dir)
    metrics = rundir.read_metrics(run_dir)
    task = tasks.get(config.task)
    summary = rundir.read_summary(run_dir)
    notes: dict[str, str] = {}
    figures: dict[str, str] = {}

    if metrics:
        figures["learning-curves"] = _png(plots.run_figure("curves", run_dir))
    else:
        notes["learning-curves"] = "No validation point has been logged yet."
    rows = summary["generalisation"] if summary else None
    if (run_dir / checkpoint.FILENAME).is_file():
        model, cfg = load(run_dir)
        if rows is None:
            rows = evaluate(model, task, list(task.eval_sizes), count=cfg.train.eval_count)
        if not plots.has_memory(model):
            description = model_kind(config.model.kind).description
            notes["memory"] = f"The {description} has no external memory to show."
        else:
            size = task.example_size if size is None else size
            figures["memory"] = _png(plots.memory_figure(model, task, size, seed))
            notes["memory"] = (f"One sequence at {task.describe_size(size)} (seed {seed}); the "
                               f"task trains on {task.training_range()}.")
        figures["generalisation"] = _png(
            plots.generalisation_figure(model, task, list(task.eval_sizes), rows, seed))
    else:
        for name in ("evaluation", "memory", "generalisation"):
            notes[name] = f"The run has no {checkpoint.FILENAME} yet, so there is no model."

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("diffmem", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["number"] = _number
    try:
        page = environment.get_template("report.html.j2").render(
            title=f"diffmem: {config.task}, {config.model.kind} ({config.preset})",
            run_dir=str(run_dir),
            resume_command=f"diffmem train --resume {shlex.quote(str(run_dir))}",
            summary=summary, config_rows=_flatten(config.to_dict()), metrics=metrics,
            rows=rows or [],
            figures=figures, notes=notes, training_range=task.training_range(),
            has_optimum=any("optimal_bits" in r for r in rows or []),
            created=time.strftime("%Y-%m-%d %H:%M:%S %Z"), version=__version__,
        )
    except (jinja2.UndefinedError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{run_dir / rundir.SUMMARY} lacks what the report needs ({err}); it "
                         "is damaged or from an incompatible version: remove it and report "
                         "again") from None
    return rundir.atomic_write(out, page)
