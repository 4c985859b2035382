"""Reproduce one of the paper's experiments: train each model on a task and record the outcome.

    python experiments/reproduce.py associative-recall                 # ntm-lstm, ntm-ff, lstm
    python experiments/reproduce.py copy --models ntm-ff --minutes 6 --preset paper

For each model this trains the task's configuration for the preset (the paper's architecture;
see diffmem.presets.PAPER_MODELS) with one seed in runs/reproduce/TASK-MODEL-PRESET, and writes
results/reproduce/TASK-MODEL-PRESET.json: the command, the resolved configuration, the budget,
the machine, the learning curve (metrics.jsonl) and the run's summary (validation and
generalisation). `python experiments/results_table.py` builds the results table from these.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console

from diffmem import rundir
from diffmem.config import apply_overrides, resolve
from diffmem.console import ConsoleReporter
from diffmem.models import names as model_names
from diffmem.train import machine_description, train_and_evaluate


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
    args = p.parse_args(argv)

    this_command = "python " + " ".join(sys.argv if argv is None else [__file__, *argv])
    models = args.models.split(",")
    if args.resume and len(models) != 1:
        p.error("--resume continues one run: name its model with --models")
    for model in models:
        budget = {"minutes": args.minutes, "seed": args.seed}
        if args.sequences:
            budget["sequences"] = args.sequences
        config = resolve(args.task, model, args.preset).replace(train=budget)
        config = apply_overrides(config, args.set)
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
        curve = rundir.read_metrics(run_dir)
        record = {
            "task": args.task, "model": model, "preset": args.preset,
            "command": command, "started": started, "machine": machine_description(),
            "config": config.to_dict(), "summary": summary, "curve": curve,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        rundir.write_json(out, record, indent=1)
        print(f"{name}: {summary['status']}, validation {summary['validation']['bits']:.4f} "
              f"bits after {summary['sequences']:,} sequences, {summary['train_seconds']:.0f} s "
              f"-> {out}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
