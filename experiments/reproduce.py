"""Reproduce one of the paper's experiments: train each model on a task and record the outcome.

    python experiments/reproduce.py associative-recall                 # ntm-lstm, ntm-ff, lstm
    python experiments/reproduce.py copy --models ntm-ff --minutes 6 --preset paper

For each model this trains the task's configuration for the preset (the paper's architecture;
see diffmem.presets.PAPER_MODELS) with one seed in runs/reproduce/TASK-MODEL-PRESET, and writes
results/reproduce/TASK-MODEL-PRESET.json: the command, the resolved configuration, the budget,
the machine, the learning curve (metrics.jsonl) and the run's summary (validation and
generalisation). `python experiments/results_table.py` builds the results table from these.

    python experiments/reproduce.py priority-sort --models ntm-lstm \
        --from-run runs/issue15/ps/b8-lr3e-3-plateau --command "diffmem train ..."

writes the results file of a run that another command trained (`diffmem train`, on one core
beside another run, say) from its run directory, with that command, instead of training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console

from diffmem import rundir
from diffmem.config import resolve
from diffmem.console import ConsoleReporter
from diffmem.models import names as model_names
from diffmem.overrides import apply_sets
from diffmem.training import train_and_evaluate
from diffmem.training.summary import machine_description


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task")
    p.add_argument("--models", default=",".join(model_names()),
                   help="comma-separated model kinds")
    p.add_argument("--preset", default="default")
    p.add_argument("--minutes", type=float, default=10.0, help="budget per model")
    p.add_argument("--sequences", type=int, help="budget per model, in sequences")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--runs", default="runs/reproduce", help="parent of the run directories")
    p.add_argument("--out", default="results/reproduce", help="folder for the results files")
    p.add_argument("--tag", help="appended to the results file's name (for --set variants)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue this run (one model) with the new budget, and rewrite its "
                   "results file; the command is appended to the recorded one")
    p.add_argument("--from-run", metavar="RUN_DIR",
                   help="write the results file of this finished run (one model) instead of "
                   "training; --command names what trained it")
    p.add_argument("--command", help="with --from-run: the command that trained the run")
    args = p.parse_args(argv)

    this_command = "python " + " ".join(sys.argv if argv is None else [__file__, *argv])
    models = args.models.split(",")
    if (args.resume or args.from_run) and len(models) != 1:
        p.error("--resume and --from-run take one run: name its model with --models")
    if bool(args.from_run) != bool(args.command):
        p.error("--from-run and --command go together: the run directory and what trained it")
    if args.from_run:
        return record_run(args.task, models[0], args.preset, Path(args.from_run), args.command,
                          Path(args.out), args.tag)
    for model in models:
        budget = {"minutes": args.minutes, "seed": args.seed}
        if args.sequences:
            budget["sequences"] = args.sequences
        config = resolve(args.task, model, args.preset).replace(train=budget)
        config = apply_sets(config, args.set)
        name = f"{args.task}-{model}-{args.preset}" + (f"-{args.tag}" if args.tag else "")
        out = Path(args.out) / f"{name}.json"
        started, command = time.strftime("%Y-%m-%dT%H:%M:%S%z"), this_command
        if args.resume:
            run_dir = Path(args.resume)
            if not out.exists():
                p.error(f"--resume: no results file {out} for this task, model, preset and tag")
            earlier = json.loads(out.read_text())
            command, started = f"{earlier['command']} && {command}", earlier["started"]
        else:
            run_dir = Path(args.runs) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        # Progress on stderr: a plain line per validation point when it goes to a log file.
        reporter = ConsoleReporter(Console(stderr=True))
        summary = train_and_evaluate(config, run_dir, resume=bool(args.resume),
                                     reporter=reporter).summary
        write_record(out, args.task, model, args.preset, command, started,
                     machine_description(), config.to_dict(), summary, run_dir)
    return 0


def write_record(out: Path, task: str, model: str, preset: str, command: str, started: str | None,
                 machine: str, config: dict, summary: dict, run_dir: Path) -> None:
    record = {
        "task": task, "model": model, "preset": preset, "command": command,
        "started": started, "machine": machine, "config": config, "summary": summary,
        "curve": rundir.read_metrics(run_dir),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    rundir.write_json(out, record, indent=1)
    print(f"{out.stem}: {summary['status']}, validation {summary['validation']['bits']:.4f} "
          f"bits after {summary['sequences']:,} sequences, {summary['train_seconds']:.0f} s "
          f"-> {out}", file=sys.stderr, flush=True)


def record_run(task: str, model: str, preset: str, run_dir: Path, command: str, out_dir: Path,
               tag: str | None) -> int:
    """The results file of a finished run trained by ``command``, from its directory."""
    try:
        config, summary = rundir.read_config(run_dir), rundir.read_summary(run_dir)
    except ValueError as err:
        raise SystemExit(f"--from-run: {err}") from None
    if summary is None:
        raise SystemExit(f"--from-run {run_dir}: the run has no summary.json; it has not "
                         "finished (resume it with diffmem train --resume)")
    if (config.task, config.model.kind, config.preset) != (task, model, preset):
        raise SystemExit(f"--from-run {run_dir}: a {config.task} {config.model.kind} run of "
                         f"preset {config.preset}, not {task} {model} {preset}")
    name = f"{task}-{model}-{preset}" + (f"-{tag}" if tag else "")
    # A run directory does not say when its training began (a resume rewrites config.json).
    write_record(out_dir / f"{name}.json", task, model, preset, command, None,
                 summary["machine"], config.to_dict(), summary, run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
