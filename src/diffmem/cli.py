"""The ``diffmem`` command: parses arguments and calls library functions, nothing more."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

console = Console()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt as stop:  # the training loop saved and said how to resume
        return 128 + getattr(stop, "signum", signal.SIGINT)
    except (ValueError, OSError) as err:  # bad values, damaged checkpoints, unusable paths
        if os.environ.get("DIFFMEM_DEBUG"):
            raise
        console.print(f"[red]error:[/red] {err}", highlight=False, soft_wrap=True)
        return 2


def _parser() -> argparse.ArgumentParser:
    from diffmem import __version__, tasks
    from diffmem.config import MODELS, OPTIMIZERS, preset_names
    from diffmem.ntm import MEMORY_INITS

    parser = argparse.ArgumentParser(
        prog="diffmem",
        description="Neural Turing Machines in JAX: train, evaluate, plot, report, demo, benchmark."
    )
    parser.add_argument("--version", action="version", version=f"diffmem {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model on a task",
                       description="Train a model on a task; defaults are in diffmem.config.")
    p.add_argument("task", nargs="?", help=f"one of: {', '.join(tasks.names())}")
    p.add_argument("--model", help=f"one of: {', '.join(MODELS)} (default: ntm-lstm; ntm-ff "
                   "for associative-recall)")
    p.add_argument("--preset", default="default", help=f"one of: {', '.join(preset_names())}")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--sequences", type=int, help="budget: stop after this many sequences")
    p.add_argument("--minutes", type=float,
                   help="budget: total minutes for the run (a resumed run counts its earlier time)")
    p.add_argument("--seed", type=int)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--optimizer", help=f"one of: {', '.join(OPTIMIZERS)}")
    p.add_argument("--memory-init", help=f"one of: {', '.join(MEMORY_INITS)}")
    p.add_argument("--no-early-stop", action="store_true",
                   help="train for the whole budget even after the target is reached")
    p.add_argument("--no-tensorboard", action="store_true",
                   help="do not write TensorBoard event files (RUN_DIR/tensorboard)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any configuration field, e.g. --set model.memory_rows=64 (repeatable)")
    p.add_argument("--run-dir", help="where to write the run (default: runs/TASK-MODEL-TIME)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run saved in RUN_DIR (only budgets and the fields listed in "
                   "diffmem.config.RESUMABLE_TRAIN_FIELDS may change)")
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate a trained run, also beyond its training lengths")
    p.add_argument("run_dir")
    p.add_argument("--sizes", "--lengths", dest="sizes",
                   help="comma-separated sizes: copy lengths (10,20,120), repeat-copy "
                   "LENGTHxREPEATS (20x10,10x20), associative-recall items (6,12,20); "
                   "default: the task's generalisation set")
    p.add_argument("--count", type=int, default=256, help="sequences per size (default 256)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_eval)

    size_help = ("copy length (40), repeat-copy LENGTHxREPEATS (12x10), associative-recall "
                 "items (10); default: the task's example size, beyond its training range")
    p = sub.add_parser("plot", help="draw a run's figures (PNG): memory use, learning curves, "
                       "generalisation")
    p.add_argument("run_dir")
    p.add_argument("--figure", default="all", help="memory, curves, generalisation or all "
                   "(default all)")
    p.add_argument("--size", "--length", dest="size", help=f"memory figure: {size_help}")
    p.add_argument("--sizes", help="generalisation figure: comma-separated sizes (as for eval)")
    p.add_argument("--compare", nargs="+", default=[], metavar="RUN_DIR",
                   help="learning curves: other runs to overlay, e.g. NTM-FF and LSTM runs")
    p.add_argument("--seed", type=int, default=0, help="seed of the example sequences")
    p.add_argument("--out-dir", help="where to write the PNG files (default RUN_DIR/figures)")
    p.set_defaults(func=_plot)

    p = sub.add_parser("report", help="write one self-contained HTML page about a run")
    p.add_argument("run_dir")
    p.add_argument("--out", help="the HTML file to write (default RUN_DIR/report.html)")
    p.add_argument("--size", "--length", dest="size", help=f"memory figure: {size_help}")
    p.add_argument("--seed", type=int, default=0, help="seed of the example sequences")
    p.set_defaults(func=_report)

    p = sub.add_parser("demo", help="run a pretrained model shipped with diffmem (no training)")
    p.add_argument("task", help="a task with a pretrained model (see the error for the list)")
    p.add_argument("--size", "--length", dest="size", help=size_help)
    p.add_argument("--seed", type=int, help="seed of the sequence (default: a fresh one)")
    p.add_argument("--out", help="memory figure to write (default demo-TASK.png)")
    p.set_defaults(func=_demo)

    p = sub.add_parser("bench", help="measure training throughput (sequences per second)")
    p.add_argument("--batch-sizes", default="1,16,64")
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds per batch size")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_bench)
    return parser


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise ValueError(f"{what} {text!r} must be comma-separated positive integers, e.g. 1,16,64")
    return values


def _train(args: argparse.Namespace) -> int:
    from diffmem import checkpoint
    from diffmem.config import (RESUMABLE_TRAIN_FIELDS, Config, apply_overrides, resolve,
                                validate)
    from diffmem.train import train_and_evaluate

    if args.resume:
        resumable = {f"train.{name}" for name in RESUMABLE_TRAIN_FIELDS}
        fixed = [f"--{name.replace('_', '-')}" for name in (
            "batch_size", "seed", "lr", "optimizer", "memory_init", "run_dir")
            if getattr(args, name) is not None]
        fixed += [flag for flag, given in (("--model", args.model is not None),
                  ("--preset", args.preset != "default")) if given]
        fixed += [f"--set {item}" for item in args.set
                  if item.partition("=")[0].strip() not in resumable]
        if fixed:
            raise ValueError(
                f"{', '.join(fixed)} cannot change a resumed run; with --resume only "
                "--sequences, --minutes, --no-early-stop, --no-tensorboard and --set with "
                f"{', '.join(sorted(resumable))} may be given"
            )
        run_dir = Path(args.resume)
        _, header = checkpoint.read(run_dir / checkpoint.FILENAME)
        config = Config.from_dict(header["config"])
        if args.task and args.task != config.task:
            raise ValueError(f"{run_dir} is a {config.task!r} run, not {args.task!r}")
        budgets = {k: v for k, v in {"sequences": args.sequences, "minutes": args.minutes}.items()
                   if v is not None}
        if args.no_early_stop:
            budgets["early_stop"] = False
        if args.no_tensorboard:
            budgets["tensorboard"] = False
        config = apply_overrides(validate(config.replace(train=budgets)), args.set)
    else:
        if not args.task:
            raise ValueError("name a task to train, e.g. `diffmem train copy`, or pass --resume")
        config = resolve(args.task, args.model, args.preset)
        train = {k: v for k, v in {
            "batch_size": args.batch_size, "sequences": args.sequences, "minutes": args.minutes,
            "seed": args.seed, "lr": args.lr, "optimizer": args.optimizer,
        }.items() if v is not None}
        if args.no_early_stop:
            train["early_stop"] = False
        if args.no_tensorboard:
            train["tensorboard"] = False
        model = {"memory_init": args.memory_init} if args.memory_init else {}
        config = apply_overrides(config.replace(model=model, train=train), args.set)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path(args.run_dir or f"runs/{config.task}-{config.model.kind}-{stamp}")
    _warn_capacity(config)
    train_and_evaluate(config, run_dir, resume=bool(args.resume), reporter=RichReporter())
    return 0


def _eval(args: argparse.Namespace) -> int:
    import diffmem
    from diffmem import tasks
    from diffmem.train import evaluate

    if args.count < 1:
        raise ValueError(f"--count {args.count} must be a positive integer")
    model, config = diffmem.load(args.run_dir)
    task = tasks.get(config.task)
    if args.sizes is not None:
        sizes = [task.parse_size(v.strip()) for v in args.sizes.split(",")]
    else:
        sizes = list(task.eval_sizes)
    _warn_capacity(config, sizes)
    rows = evaluate(model, task, sizes, count=args.count)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    console.print(_eval_table(rows, f"{config.task}, {config.model.kind}: {args.count} "
                                    "fixed, seeded sequences per size"))
    return 0


def _eval_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    optimum = any("optimal_bits" in r for r in rows)
    names = ["size", "bits / sequence"] + (["optimal predictor"] if optimum else [])
    for name in names + ["bit errors / sequence", "wrong bits"]:
        table.add_column(name, justify="right")
    for r in rows:
        cells = [r["label"], f"{r['bits']:.4f}"]
        if optimum:
            cells.append(f"{r['optimal_bits']:.4f}" if "optimal_bits" in r else "-")
        table.add_row(*cells, f"{r['bit_errors']:.3f}", f"{100 * r['wrong_bit_fraction']:.3f}%")
    return table


def _warn_capacity(config, sizes=None) -> None:
    from diffmem.config import Config, capacity_warnings

    if isinstance(config, dict):
        config = Config.from_dict(config)
    for text in capacity_warnings(config, sizes):
        console.print(f"[yellow]warning:[/yellow] {text}", highlight=False, soft_wrap=True)


def _run_task(run_dir: str):
    from diffmem import plots, tasks

    return tasks.get(plots.read_config(run_dir)["task"])


def _size(task, text: str | None) -> dict[str, Any] | None:
    return None if text is None else task.parse_size(text.strip())


def _seed(value: int) -> int:
    if value < 0:
        raise ValueError(f"--seed {value} must be a non-negative integer")
    return value


def _plot(args: argparse.Namespace) -> int:
    from diffmem import plots

    names = plots.FIGURES if args.figure == "all" else (args.figure,)
    if args.figure != "all" and args.figure not in plots.FIGURES:
        raise ValueError(f"--figure {args.figure!r} is not one of: all, {', '.join(plots.FIGURES)}")
    task = _run_task(args.run_dir)
    size = _size(task, args.size)
    sizes = None if args.sizes is None else [task.parse_size(v.strip())
                                             for v in args.sizes.split(",")]
    seed = _seed(args.seed)
    if size is not None and "memory" in names:
        _warn_capacity(plots.read_config(args.run_dir), [size])
    for other in args.compare:
        plots.read_config(other)  # each run to overlay is checked before any figure is drawn
    if args.figure == "all" and plots.read_config(args.run_dir)["model"]["kind"] == "lstm":
        names = tuple(n for n in names if n != "memory")
        console.print("The LSTM baseline has no memory, so there is no memory figure.")
    out_dir = Path(args.out_dir or Path(args.run_dir) / "figures")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        fig = plots.run_figure(name, args.run_dir, size=size, sizes=sizes,
                               compare=tuple(args.compare), seed=seed)
        path = plots.save(fig, out_dir / f"{name}.png")
        console.print(f"wrote {path}", highlight=False)
    return 0


def _report(args: argparse.Namespace) -> int:
    from diffmem.report import write_report

    size = _size(_run_task(args.run_dir), args.size)
    if size is not None:
        from diffmem import plots

        _warn_capacity(plots.read_config(args.run_dir), [size])
    path = write_report(args.run_dir, args.out, size=size, seed=_seed(args.seed))
    console.print(f"wrote {path} (open it in a browser)", highlight=False)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from diffmem import demo, plots, tasks

    demo.pretrained_path(args.task)  # a clear error before any work
    task = tasks.get(args.task)
    seed = None if args.seed is None else _seed(args.seed)
    out = Path(args.out or f"demo-{args.task}.png")
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {str(out)!r} must name a .png file, e.g. demo-{args.task}.png")
    if not out.parent.is_dir():
        raise ValueError(f"--out {str(out)!r}: the folder {out.parent} does not exist")
    size = _size(task, args.size)
    if size is not None:
        from diffmem import checkpoint

        _warn_capacity(checkpoint.read(demo.pretrained_path(args.task))[1]["config"], [size])
    r = demo.run(args.task, size, seed)
    info = r.info
    console.print(
        f"[bold]diffmem demo {args.task}[/bold]: the pretrained {r.config.model.kind} "
        f"({r.config.preset} preset, trained on {task.training_range()} for "
        f"{info.get('sequences', 0):,} sequences; validation "
        f"{info.get('validation', {}).get('bits', float('nan')):.4f} bits per sequence)",
        highlight=False)
    table = Table(title=f"One fresh sequence, {task.describe_size(r.size)}, seed {r.seed}")
    for name in ("bits / sequence", "bit errors", "wrong bits"):
        table.add_column(name, justify="right")
    cells = [f"{r.metrics['bits']:.4f}", f"{r.metrics['bit_errors']:.0f}",
             f"{100 * r.metrics['wrong_bit_fraction']:.2f}%"]
    if "optimal_bits" in r.metrics:
        table.add_column("optimal predictor", justify="right")
        cells.append(f"{r.metrics['optimal_bits']:.4f}")
    table.add_row(*cells)
    console.print(table)
    plots.save(plots.memory_figure(r.model, task, r.size, example=r.example), out)
    console.print(f"wrote the memory figure to {out}; rerun this sequence with --seed {r.seed}",
                  highlight=False)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from diffmem.bench import benchmark

    if not math.isfinite(args.seconds) or args.seconds <= 0:
        raise ValueError(f"--seconds {args.seconds} must be a positive, finite number")
    sizes = _int_list(args.batch_sizes, "--batch-sizes")
    rows = []
    for size in sizes:
        if not args.json:
            console.print(f"batch {size}: compiling and timing for {args.seconds:g} s ...")
        rows += benchmark([size], seconds=args.seconds)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"Training throughput, copy length 20 ({rows[0]['time_steps']} steps), "
                        f"{rows[0]['parameters']:,} parameters\n{rows[0]['device']}")
    for name in ("batch size", "sequences / s", "updates / s", "compile s"):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(str(r["batch_size"]), f"{r['sequences_per_second']:,.0f}",
                      f"{r['updates_per_second']:,.1f}", f"{r['compile_seconds']:.1f}")
    console.print(table)
    return 0


class RichReporter:
    """A live progress bar while training, and a summary table at the end."""

    def __init__(self) -> None:
        self.progress: Progress | None = None

    def start(self, config, parameters: int, sequences: int, compile_seconds: float) -> None:
        from diffmem.config import paper_parameters

        t = config.train
        budget = f"{t.sequences:,} sequences" + (f" or {t.minutes:g} minutes" if t.minutes else "")
        paper = paper_parameters(config)
        versus = f", the paper's {paper:,}" if paper else ""
        console.print(
            f"[bold]diffmem train {config.task}[/bold] ({config.preset} preset): "
            f"{config.model.kind} ({parameters:,} parameters{versus}), batch {t.batch_size}, "
            f"{t.optimizer} lr {t.lr:g}, seed {t.seed}; budget {budget}; "
            f"compiled in {compile_seconds:.1f} s",
            highlight=False,
        )
        self.progress = Progress(
            TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
            TextColumn("seq  loss {task.fields[loss]}  bits {task.fields[bits]}  "
                       "val {task.fields[val]}  {task.fields[speed]} seq/s"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console,
        )
        self.progress.start()
        self.task_id = self.progress.add_task(
            "train", total=t.sequences, completed=sequences, loss="-", bits="-", val="-", speed="-"
        )

    def advance(self, sequences: int) -> None:
        self.progress.advance(self.task_id, sequences)

    def log(self, r: dict[str, Any]) -> None:
        fmt = lambda v, f: "nan" if v is None else format(v, f)  # noqa: E731
        self.progress.update(self.task_id, loss=fmt(r["loss"], ".3f"), bits=fmt(r["bits"], ".3f"),
                             val=fmt(r["val_bits"], ".3f"),
                             speed=fmt(r["sequences_per_second"], ",.0f"))

    def rewind(self, sequences: int) -> None:
        self.progress.update(self.task_id, completed=sequences)

    def message(self, text: str) -> None:
        console.print(text)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def summary(self, s: dict[str, Any]) -> None:
        v = s["validation"]
        table = Table(title=f"Summary: {s['task']}, {s['model']} ({s['status']})",
                      show_header=False)
        table.add_column(justify="right", style="bold")
        table.add_column()
        first = s["first_below_target"]
        rows = [
            ("sequences", f"{s['sequences']:,} ({s['steps']:,} updates)"),
            ("time", f"{s['train_seconds']:.1f} s, compilation ({s['compile_seconds']:.1f} s) "
                     "included"),
            ("validation bits / seq", f"{v['bits']:.4f} (target < {s['target_bits']:.4g}: "
                                       f"{'reached' if s['reached_target'] else 'NOT reached'})"),
        ]
        if "optimal_bits" in v:
            rows.append(("optimal predictor", f"{v['optimal_bits']:.4f} bits / seq on the same "
                                              f"{v['sequences']:,} sequences"))
        rows += [
            ("validation bit errors / seq", f"{v['bit_errors']:.3f}"),
            ("first below target", "never" if first is None else
             f"after {first['sequences']:,} sequences, {first['seconds']:.1f} s"),
        ]
        for label, value in rows:
            table.add_row(label, value)
        for g in s["generalisation"]:
            optimum = (f" (optimal predictor {g['optimal_bits']:.4f})"
                       if "optimal_bits" in g else "")
            table.add_row(g["label"], f"{g['bits']:.4f} bits{optimum}, {g['bit_errors']:.3f} "
                                      f"bit errors per sequence "
                                      f"({100 * g['wrong_bit_fraction']:.3f}% wrong)")
        table.add_row("run directory", s["run_dir"])
        console.print(table)


if __name__ == "__main__":
    sys.exit(main())
