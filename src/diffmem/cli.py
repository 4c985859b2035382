"""The ``diffmem`` command: parses arguments and calls library functions, nothing more."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diffmem import __version__
from diffmem.machine import one_thread_per_process


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _current_folder_on_path()
    try:
        return args.func(args)
    except KeyboardInterrupt as stop:  # the training loop saved and said how to resume
        return 128 + getattr(stop, "signum", signal.SIGINT)
    except (ValueError, OSError) as err:  # bad values, damaged checkpoints, unusable paths
        if os.environ.get("DIFFMEM_DEBUG"):
            raise
        from diffmem.console import error

        error(str(err))
        return 2


def _current_folder_on_path() -> None:
    """Let a task spec ``module:Attr`` name a module in the current folder, as ``python -m``
    does (after the installed packages, which it cannot hide)."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)


# The task argument's help, after the registered names.
_OWN_TASK = "or your own as MODULE:ATTR (a Task class or function), or --data FILE.npz"


class _Command(argparse.ArgumentParser):
    """A command's parser that adds its options (``options(parser)``) when it first parses.
    Their help lists the registered tasks, models and presets, and the registries import JAX,
    so `diffmem --help` and `diffmem --version` build no command's options; `diffmem train
    --help` builds train's, from the registries themselves."""

    def __init__(self, *args: Any,
                 options: Callable[[argparse.ArgumentParser], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._options = options

    def parse_known_args(self, args=None, namespace=None):
        if self._options is not None:
            options, self._options = self._options, None
            options(self)
        return super().parse_known_args(args, namespace)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffmem",
        description="Neural Turing Machines in JAX: train, evaluate, plot, report, demo, benchmark."
    )
    parser.add_argument("--version", action="version", version=f"diffmem {__version__}")
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Command)
    for add in (_add_train, _add_sweep, _add_config, _add_eval, _add_plot, _add_report,
                _add_demo, _add_bench):
        add(sub)
    return parser


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on a task or on your arrays",
                       options=_train_options,
                       description="Train a model on a task, or on your own arrays (--data, "
                       "docs/your-data.md); `diffmem config TASK` shows the settings it will "
                       "use (diffmem.presets).")
    p.set_defaults(func=_train)


def _train_options(p: argparse.ArgumentParser) -> None:
    from diffmem import models, tasks
    from diffmem.config import OPTIMIZERS, preset_names
    from diffmem.ntm import MEMORY_INITS
    from diffmem.presets import DEFAULT_MODELS

    p.add_argument("task", nargs="?", help=f"one of: {', '.join(tasks.names())}; {_OWN_TASK}")
    p.add_argument("--data", metavar="FILE.npz", help="train on your own arrays instead of a "
                   "task: inputs (N, T, C) and targets (N, T, K) bits or (N, T) classes, "
                   "optionally mask and lengths (docs/your-data.md)")
    p.add_argument("--val-fraction", type=float, metavar="F", help="with --data: the part of "
                   "the sequences held out for validation (default 0.1, the same ones for "
                   "every run)")
    p.add_argument("--val-data", metavar="FILE2.npz", help="with --data: a file of held-out "
                   "sequences, instead of holding out part of FILE.npz")
    chosen = set(DEFAULT_MODELS.values())
    defaults = (chosen.pop() if len(chosen) == 1 else
                "; ".join(f"{m} for {t}" for t, m in DEFAULT_MODELS.items()))
    p.add_argument("--model", help=f"one of: {', '.join(models.names())} (default: {defaults})")
    p.add_argument("--preset", default="default", help=f"one of: {', '.join(preset_names())}")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--sequences", type=int, help="budget: stop after this many sequences")
    p.add_argument("--minutes", type=float,
                   help="budget: total minutes for the run (a resumed run counts its earlier time)")
    p.add_argument("--seed", type=int)
    p.add_argument("--seeds", help="train a population of these seeds in one compiled update, "
                   "e.g. 0-9 or 0,3,7 (a run directory each under RUN_DIR); with "
                   "--set train.lr=1e-3,3e-3 every seed at every rate")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--optimizer", help=f"one of: {', '.join(OPTIMIZERS)}")
    p.add_argument("--memory-init", help=f"one of: {', '.join(MEMORY_INITS)}")
    p.add_argument("--no-early-stop", action="store_true",
                   help="train for the whole budget even after the target is reached")
    p.add_argument("--no-tensorboard", action="store_true",
                   help="do not write TensorBoard event files (RUN_DIR/tensorboard)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any configuration field, e.g. --set model.memory_rows=64 (repeatable)")
    p.add_argument("--run-dir", help="where to write the run (default: runs/TASK-MODEL-TIME; "
                   "with --data, the file's name for TASK)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run saved in RUN_DIR (only budgets and the fields listed in "
                   "diffmem.config.RESUMABLE_TRAIN_FIELDS may change)")


def _add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep", help="train a grid of settings, each a population of seeds, and tabulate them",
        options=_sweep_options,
        description="Train the cross product of the --grid values, each grid point as a "
        "population of the --seeds, on this machine (--engine local) or on Ray Tune (--engine "
        "ray); write DIR/results.md, .csv and .json with a row per run. The same command "
        "again goes on with an interrupted sweep.")
    p.set_defaults(func=_sweep)


def _sweep_options(p: argparse.ArgumentParser) -> None:
    from diffmem import tasks
    from diffmem.config import preset_names

    p.add_argument("task", help=f"one of: {', '.join(tasks.names())}; or your own as "
                   "MODULE:ATTR or npz:FILE.npz")
    p.add_argument("--model", help="default: the task's default model")
    p.add_argument("--preset", default="default", help=f"one of: {', '.join(preset_names())}")
    p.add_argument("--seeds", default="0-9", help="the seeds of every grid point (default 0-9)")
    p.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                   help="a field and its values, e.g. --grid train.lr=1e-3,3e-3 (repeatable; "
                   "the cross product is trained)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a field for every run (repeatable)")
    p.add_argument("--minutes", type=float, help="budget of every run (default: the preset's)")
    p.add_argument("--out", required=True, metavar="DIR", help="where the sweep is written")
    p.add_argument("--engine", default="local", help="local (default) or ray")
    p.add_argument("--parallel", type=int, default=1,
                   help="local engine: trials side by side, one core each (default 1); a grid "
                   "point's seeds are shared out where the points are fewer")
    p.add_argument("--address", help="ray engine: a running cluster to join, e.g. auto "
                   "(default: start Ray on this machine)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="ray engine (default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="ray engine: e.g. 0.25 to let four trials share a GPU (default 0)")


def _add_config(sub) -> None:
    p = sub.add_parser("config", help="print the configuration a train command would use",
                       options=_config_options,
                       description="Print, as JSON, the resolved configuration of a task, model "
                       "and preset (diffmem.presets) with --set applied, why the preset sets "
                       "what it does, and the parameter count beside the paper's; trains "
                       "nothing.")
    p.set_defaults(func=_config)


def _config_options(p: argparse.ArgumentParser) -> None:
    from diffmem import models, tasks
    from diffmem.config import preset_names

    p.add_argument("task", help=f"one of: {', '.join(tasks.names())}; or your own as "
                   "MODULE:ATTR or npz:FILE.npz")
    p.add_argument("--model", help=f"one of: {', '.join(models.names())} (default: the task's, "
                   "as for train)")
    p.add_argument("--preset", default="default", help=f"one of: {', '.join(preset_names())}")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any configuration field, e.g. --set model.memory_rows=64 (repeatable)")


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run, also beyond its training lengths")
    p.add_argument("run_dir")
    p.add_argument("--sizes", "--lengths", dest="sizes",
                   help="comma-separated sizes: copy lengths (10,20,120), repeat-copy "
                   "LENGTHxREPEATS (20x10,10x20), associative-recall items (6,12,20), a "
                   "data run's split (train, val); default: the task's generalisation set (a "
                   "data run: every held-out sequence)")
    p.add_argument("--count", type=int, help="sequences per size (default 256)")
    p.add_argument("--memory-rows", type=int, metavar="N", help="evaluate on a memory of N "
                   "rows (a model whose parameters do not depend on them: dnc, sam, sdnc); "
                   "default: the run's own (model.eval_memory_rows, else model.memory_rows)")
    p.add_argument("--data", metavar="FILE.npz", help="score every sequence of a file of "
                   "arrays instead (as for train --data; its sizes must fit the run's model)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_eval)


# The --size option of plot, report and demo.
_SIZE_HELP = ("copy length (40), repeat-copy LENGTHxREPEATS (12x10), associative-recall "
              "items (10); default: the task's example size, beyond its training range")


def _add_plot(sub) -> None:
    p = sub.add_parser("plot", help="draw a run's figures (PNG): memory use, learning curves, "
                       "generalisation")
    p.add_argument("run_dir")
    p.add_argument("--figure", default="all", help="memory, curves, generalisation or all "
                   "(default all)")
    p.add_argument("--size", "--length", dest="size", help=f"memory figure: {_SIZE_HELP}")
    p.add_argument("--sizes", help="generalisation figure: comma-separated sizes (as for eval)")
    p.add_argument("--compare", nargs="+", default=[], metavar="RUN_DIR",
                   help="learning curves: other runs to overlay, e.g. NTM-FF and LSTM runs")
    p.add_argument("--seed", type=int, default=0, help="seed of the example sequences")
    p.add_argument("--out-dir", help="where to write the PNG files (default RUN_DIR/figures)")
    p.set_defaults(func=_plot)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="write one self-contained HTML page about a run")
    p.add_argument("run_dir")
    p.add_argument("--out", help="the HTML file to write (default RUN_DIR/report.html)")
    p.add_argument("--size", "--length", dest="size", help=f"memory figure: {_SIZE_HELP}")
    p.add_argument("--seed", type=int, default=0, help="seed of the example sequences")
    p.set_defaults(func=_report)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="run a pretrained model shipped with diffmem (no training)")
    p.add_argument("task", help="a task with a pretrained model (see the error for the list)")
    p.add_argument("--model", help="the model kind to run, where the task ships several "
                   "(default: the task's default one)")
    p.add_argument("--size", "--length", dest="size", help=_SIZE_HELP)
    p.add_argument("--seed", type=int, help="seed of the sequence (default: a fresh one)")
    p.add_argument("--out", help="memory figure to write (default demo-TASK.png, or "
                   "demo-TASK-MODEL.png with --model)")
    p.set_defaults(func=_demo)


def _add_bench(sub) -> None:
    p = sub.add_parser("bench", help="measure training throughput (sequences per second)",
                       options=_bench_options)
    p.set_defaults(func=_bench)


def _bench_options(p: argparse.ArgumentParser) -> None:
    from diffmem import models

    p.add_argument("--model", default="ntm-lstm",
                   help=f"one of: {', '.join(models.names())} (default: ntm-lstm), with its "
                   "copy settings")
    p.add_argument("--batch-sizes", default="1,16,64")
    p.add_argument("--population", help="populations to time, e.g. 1,4,10,32: each trains that "
                   "many seeds in one compiled update (diffmem train --seeds); its speed counts "
                   "the sequences of all members")
    p.add_argument("--memory-rows", metavar="N1,N2,...",
                   help="memory sizes to time, e.g. 128,256,512: a row for each (rows x batch "
                   "size), with the step's time and its planned memory")
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds per batch size")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any configuration field, e.g. --set model.link_topk=8 (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise ValueError(f"{what} {text!r} must be comma-separated positive integers, e.g. 1,16,64")
    return values


# The options of `diffmem train` that set a configuration field, and the field each sets.
_TRAIN_FLAGS = {"batch_size": "train.batch_size", "sequences": "train.sequences",
                "minutes": "train.minutes", "seed": "train.seed", "lr": "train.lr",
                "optimizer": "train.optimizer", "memory_init": "model.memory_init"}


def parse_seeds(text: str, what: str = "--seeds") -> list[int]:
    """``0-9`` or ``0,3,7`` (or both, ``0-4,9``) as a list of distinct seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, dash, hi = part.strip().partition("-")
            seeds += list(range(int(lo), int(hi) + 1)) if dash else [int(lo)]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"{what} {text!r} must list distinct seeds >= 0 as ranges or "
                         "commas, e.g. 0-9 or 0,3,7")
    return seeds


def split_rates(assignments: list[str]) -> tuple[list[str], list[float] | None]:
    """``--set`` items without a ``train.lr=R1,R2,...`` list, and the list's rates (None
    without one). No other field may take several values in one command."""
    rest, rates = [], None
    for item in assignments:
        name, _, raw = item.partition("=")
        if "," not in raw:
            rest.append(item)
            continue
        if name.strip() != "train.lr":
            raise ValueError(f"--set {item!r}: only train.lr may take several values (a "
                             "population of rates); for a grid of other fields use "
                             "`diffmem sweep --grid FIELD=V1,V2`")
        try:
            rates = [float(v) for v in raw.split(",")]
        except ValueError:
            raise ValueError(f"--set {item!r}: the rates must be numbers, e.g. "
                             "train.lr=1e-3,3e-3") from None
    return rest, rates


def _train(args: argparse.Namespace) -> int:
    from diffmem import checkpoint
    from diffmem.config import Config, resolve
    from diffmem.console import ConsoleReporter, PopulationConsoleReporter
    from diffmem.overrides import apply_sets
    from diffmem.training import population, train_and_evaluate

    changes = {field: getattr(args, name) for name, field in _TRAIN_FLAGS.items()
               if getattr(args, name) is not None}
    if args.no_early_stop:
        changes["train.early_stop"] = False
    if args.no_tensorboard:
        changes["train.tensorboard"] = False
    sets, rates = split_rates(args.set)
    if args.seeds or rates or (args.resume and population.read_population(args.resume)):
        one_thread_per_process()
    if args.resume and population.read_population(args.resume) is not None:
        _check_resumable(args, changes)
        if rates or args.seeds:
            raise ValueError("--seeds and several rates cannot change a resumed population")
        configs = [apply_sets(c.replace(train={f.split(".")[1]: v for f, v in
                                                    changes.items()}), sets)
                   for c in population.population_configs(args.resume)]
        population.train_population(configs, args.resume, resume=True,
                                    reporter=PopulationConsoleReporter())
        return 0
    if args.seeds or rates:
        if args.resume:
            raise ValueError("--seeds and several rates cannot change a resumed run")
        if args.seed is not None and args.seeds:
            raise ValueError("give --seed for one run or --seeds for a population, not both")
    task = _train_task(args)
    if args.resume:
        _check_resumable(args, changes)
        run_dir = Path(args.resume)
        config = Config.from_dict(checkpoint.read_header(run_dir / checkpoint.FILENAME)["config"])
        if task and task != config.task:
            raise ValueError(f"{run_dir} is a {config.task!r} run, not {task!r}")
    else:
        if not task:
            raise ValueError("name a task to train, e.g. `diffmem train copy`, or give "
                             "--data FILE.npz, or pass --resume")
        config = resolve(task, args.model, args.preset)
    model = {f.split(".")[1]: v for f, v in changes.items() if f.startswith("model.")}
    train = {f.split(".")[1]: v for f, v in changes.items() if f.startswith("train.")}
    config = apply_sets(config.replace(model=model, train=train), sets)
    if not args.resume:
        run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir(config)
    _warn_capacity(config)
    if args.seeds or rates:
        seeds = parse_seeds(args.seeds) if args.seeds else [config.train.seed]
        population.train_population(population.member_configs(config, seeds, rates), run_dir,
                                    reporter=PopulationConsoleReporter())
        return 0
    train_and_evaluate(config, run_dir, resume=bool(args.resume), reporter=ConsoleReporter())
    return 0


def _train_task(args: argparse.Namespace) -> str | None:
    """The task spec that ``diffmem train`` was given: the task argument, or the spec of
    ``--data`` (None: neither)."""
    from diffmem.tasks import arrays

    if args.data is None:
        if args.val_fraction is not None or args.val_data is not None:
            raise ValueError("--val-fraction and --val-data go with --data FILE.npz")
        return _task_spec(args.task)
    if args.task:
        raise ValueError(f"give a task ({args.task}) or --data {args.data}, not both")
    if args.val_fraction is not None and args.val_data is not None:
        raise ValueError("give --val-fraction or --val-data, not both: every sequence of "
                         "the --val-data file is held out")
    if args.val_data is not None and Path(args.val_data).absolute() == Path(args.data).absolute():
        raise ValueError(f"--val-data {args.val_data} is the training file itself, so nothing "
                         "would be held out; give another file, or --val-fraction")
    if args.val_fraction is not None and not 0 < args.val_fraction < 1:
        raise ValueError(f"--val-fraction {args.val_fraction:g} must be between 0 and 1 "
                         "(exclusive), e.g. 0.1: the part of the sequences held out")
    return arrays.spec(args.data, args.val_fraction, args.val_data)


def _task_spec(text: str | None) -> str | None:
    """A task as given on the command line, a file's paths made absolute (``npz:FILE``), so
    that its runs are found from any folder."""
    if text is None or not text.startswith("npz:"):
        return text
    from diffmem.tasks import arrays

    options = arrays.parse_spec(text)
    return arrays.spec(options["path"], options.get("val_fraction"), options.get("val_data"))


def _default_run_dir(config) -> Path:
    """runs/TASK-MODEL-TIME, TASK the name of a task not registered (for a file: its stem)."""
    from diffmem import tasks

    name = config.task
    if name not in tasks.names():
        name = re.sub(r"[^A-Za-z0-9_.+-]", "-", tasks.get(name).name)
    return Path(f"runs/{name}-{config.model.kind}-{time.strftime('%Y%m%d-%H%M%S')}")


def _sweep(args: argparse.Namespace) -> int:
    from diffmem import sweep
    from diffmem.console import console

    grid = sweep.parse_grid(args.grid)
    points = math.prod(len(values) for _, values in grid)
    seeds = parse_seeds(args.seeds)
    if args.minutes is not None and (not math.isfinite(args.minutes) or args.minutes <= 0):
        raise ValueError(f"--minutes {args.minutes} must be a positive number")
    if args.engine not in sweep.ENGINES:
        raise ValueError(f"--engine {args.engine!r} is not one of: {', '.join(sweep.ENGINES)}")
    if args.parallel < 1:
        raise ValueError(f"--parallel {args.parallel} must be at least 1")
    parts = max(1, args.parallel // points) if args.engine == "local" else 1
    if args.engine == "local":  # trials in this process, or in processes that inherit it
        one_thread_per_process()
    spec = sweep.Sweep(_task_spec(args.task), Path(args.out), tuple(seeds), args.model,
                       args.preset,
                       tuple(args.set), grid, args.minutes, min(parts, len(seeds)))
    try:
        rows = sweep.run(spec, args.engine, args.parallel, args.address, args.cpus_per_trial,
                         args.gpus_per_trial, say=lambda text: console.print(text,
                                                                              highlight=False))
    except KeyboardInterrupt:
        console.print("sweep interrupted: run the same command again to go on (finished "
                      "trials are kept, the others resume from their checkpoints)")
        raise
    print((Path(args.out) / "results.md").read_text())
    del rows
    return 0


def _config(args: argparse.Namespace) -> int:
    from diffmem.config import describe, resolve
    from diffmem.overrides import apply_sets

    config = apply_sets(resolve(_task_spec(args.task), args.model, args.preset), args.set)
    print(json.dumps(describe(config), indent=2))
    return 0


def _check_resumable(args: argparse.Namespace, changes: dict[str, Any]) -> None:
    """Refuse, before any work, options that would make a resumed run another run; which
    fields may change is ``diffmem.config.RESUMABLE_TRAIN_FIELDS``."""
    from diffmem.config import RESUMABLE_TRAIN_FIELDS

    resumable = {f"train.{name}" for name in RESUMABLE_TRAIN_FIELDS}
    flags = {field: f"--{name.replace('_', '-')}" for name, field in _TRAIN_FLAGS.items()}
    fixed = [flags[field] for field in changes if field not in resumable]
    fixed += [flag for flag, given in (("--model", args.model is not None),
                                       ("--preset", args.preset != "default"),
                                       ("--run-dir", args.run_dir is not None),
                                       ("--data", args.data is not None),
                                       ("--val-fraction", args.val_fraction is not None),
                                       ("--val-data", args.val_data is not None)) if given]
    fixed += [f"--set {item}" for item in args.set
              if item.partition("=")[0].strip() not in resumable]
    if fixed:
        raise ValueError(
            f"{', '.join(fixed)} cannot change a resumed run; with --resume only "
            "--sequences, --minutes, --no-early-stop, --no-tensorboard and --set with "
            f"{', '.join(sorted(resumable))} may be given"
        )


def _eval(args: argparse.Namespace) -> int:
    import diffmem
    from diffmem import tasks
    from diffmem.console import console, eval_table
    from diffmem.tasks import arrays
    from diffmem.training import evaluate
    from diffmem.training.evaluation import EVALUATION_SEED

    if args.data is not None and (args.sizes is not None or args.count is not None):
        raise ValueError("--data scores every sequence of the file: leave out --sizes and "
                         "--count")
    count = 256 if args.count is None else args.count
    if count < 1:
        raise ValueError(f"--count {count} must be a positive integer")
    model, config = diffmem.load(args.run_dir)
    if args.memory_rows is not None:
        model, config = _on_memory(model, config, args.memory_rows)
    task = tasks.get(config.task)
    if args.data is not None:
        return _eval_file(args, model, config, arrays.file_task(args.data, task))
    if args.sizes is None and task.validation_set(count, EVALUATION_SEED) is not None:
        return _eval_file(args, model, config, task)  # its held-out set, all of it
    if args.sizes is not None:
        sizes = [task.parse_size(v.strip()) for v in args.sizes.split(",")]
    else:
        sizes = list(task.eval_sizes)
    _warn_capacity(config, sizes)
    rows = evaluate(model, task, sizes, count=count)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    console.print(eval_table(rows, f"{config.task}, {config.model.kind}: {count} "
                                   "fixed, seeded sequences per size"))
    return 0


def _on_memory(model, config, rows: int):
    """``model`` (loaded from a run) and ``config`` on a memory of ``rows`` rows."""
    from diffmem import models
    from diffmem.config import ConfigError, validate

    kind = models.get(config.model.kind)
    if not kind.has_memory:
        raise ValueError(f"--memory-rows {rows}: the {kind.name} has no memory; leave it out")
    if not kind.resizable_memory:
        raise ValueError(
            f"--memory-rows {rows}: the {kind.name}'s parameters depend on the number of memory "
            f"rows, so it runs only on the memory it was trained with; leave --memory-rows out")
    if rows < 1:
        raise ValueError(f"--memory-rows {rows} must be a positive integer")
    try:
        config = validate(config.replace(model={"eval_memory_rows": rows}))
    except ConfigError as err:
        raise ValueError(f"--memory-rows {rows}: {err}") from None
    return models.for_evaluation(model, config), config


def _eval_file(args: argparse.Namespace, model, config, scorer) -> int:
    """The run's model on every sequence of ``scorer``'s held-out set: a file given with
    ``--data`` (``arrays.file_task``), or the held-out set of the run's own task."""
    from flax import nnx

    from diffmem.console import console, eval_table
    from diffmem.training.evaluation import EVALUATION_SEED, evaluate_batches, make_eval_step

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    batches = scorer.validation_set(config.train.eval_count, EVALUATION_SEED)
    figures = evaluate_batches(scorer, make_eval_step(graphdef, rest, scorer), params, batches)
    if args.data is not None:
        path = scorer.split("val")[0].path
        size, label, what = {"data": str(path)}, path.name, f"every sequence of {path}"
    else:
        size, label, what = {"split": "val"}, "held-out set", "every held-out sequence"
    rows = [{"size": size, "label": label, **figures}]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    console.print(eval_table(rows, f"{config.task}, {config.model.kind}: {what}"))
    return 0


def _warn_capacity(config, sizes=None) -> None:
    from diffmem.config import capacity_warnings
    from diffmem.console import warn

    for text in capacity_warnings(config, sizes):
        warn(text)


def _run_config(run_dir: str):
    """A run directory's configuration and task, read once."""
    from diffmem import rundir, tasks

    config = rundir.read_config(run_dir)
    return config, tasks.get(config.task)


def _size(task, text: str | None) -> dict[str, Any] | None:
    return None if text is None else task.parse_size(text.strip())


def _seed(value: int) -> int:
    if value < 0:
        raise ValueError(f"--seed {value} must be a non-negative integer")
    return value


def _plot(args: argparse.Namespace) -> int:
    from diffmem import models, plots, rundir
    from diffmem.console import console

    names = plots.FIGURES if args.figure == "all" else (args.figure,)
    if args.figure != "all" and args.figure not in plots.FIGURES:
        raise ValueError(f"--figure {args.figure!r} is not one of: all, {', '.join(plots.FIGURES)}")
    config, task = _run_config(args.run_dir)
    size = _size(task, args.size)
    sizes = None if args.sizes is None else [task.parse_size(v.strip())
                                             for v in args.sizes.split(",")]
    seed = _seed(args.seed)
    if size is not None and "memory" in names:
        _warn_capacity(config, [size])
    for other in args.compare:
        rundir.read_config(other)  # each run to overlay is checked before any figure is drawn
    kind = models.get(config.model.kind)
    if args.figure == "all" and not kind.has_memory:
        names = tuple(n for n in names if n != "memory")
        console.print(f"The {kind.description} has no memory, so there is no memory figure.")
    out_dir = Path(args.out_dir or Path(args.run_dir) / "figures")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        fig = plots.run_figure(name, args.run_dir, size=size, sizes=sizes,
                               compare=tuple(args.compare), seed=seed)
        path = plots.save(fig, out_dir / f"{name}.png")
        console.print(f"wrote {path}", highlight=False)
    return 0


def _report(args: argparse.Namespace) -> int:
    from diffmem.console import console
    from diffmem.report import write_report

    config, task = _run_config(args.run_dir)
    size = _size(task, args.size)
    if size is not None:
        _warn_capacity(config, [size])
    path = write_report(args.run_dir, args.out, size=size, seed=_seed(args.seed))
    console.print(f"wrote {path} (open it in a browser)", highlight=False)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from diffmem import demo, plots, tasks
    from diffmem.console import console, demo_table

    path = demo.pretrained_path(args.task, args.model)  # a clear error before any work
    task = tasks.get(args.task)
    seed = None if args.seed is None else _seed(args.seed)
    name = args.task if args.model is None else f"{args.task}-{args.model}"
    model_option = "" if args.model is None else f" --model {args.model}"
    out = Path(args.out or f"demo-{name}.png")
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out {str(out)!r} must name a .png file, e.g. demo-{name}.png")
    if not out.parent.is_dir():
        raise ValueError(f"--out {str(out)!r}: the folder {out.parent} does not exist")
    size = _size(task, args.size)
    if size is not None:
        from diffmem import checkpoint
        from diffmem.config import Config

        header = checkpoint.read_header(path)
        _warn_capacity(Config.from_dict(header["config"]), [size])
    r = demo.run(args.task, size, seed, args.model)
    info = r.info
    console.print(
        f"[bold]diffmem demo {args.task}{model_option}[/bold]: the pretrained "
        f"{r.config.model.kind} ({r.config.preset} preset, trained on {task.training_range()} for "
        f"{info.get('sequences', 0):,} sequences; validation "
        f"{info.get('validation', {}).get('bits', float('nan')):.4f} bits per sequence)",
        highlight=False)
    console.print(demo_table(r.metrics, f"One fresh sequence, {task.describe_size(r.size)}, "
                                        f"seed {r.seed}"))
    if not plots.has_memory(r.model):  # a shipped LSTM baseline has no memory to draw
        console.print(f"The {r.config.model.kind} has no memory, so there is no memory figure; "
                      f"rerun this sequence with --seed {r.seed}", highlight=False)
        return 0
    plots.save(plots.memory_figure(r.model, task, r.size, example=r.example), out)
    console.print(f"wrote the memory figure to {out}; rerun this sequence with --seed {r.seed}",
                  highlight=False)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from diffmem import models
    from diffmem.bench import benchmark
    from diffmem.config import resolve
    from diffmem.console import bench_table, console
    from diffmem.overrides import apply_sets

    if not math.isfinite(args.seconds) or args.seconds <= 0:
        raise ValueError(f"--seconds {args.seconds} must be a positive, finite number")
    sizes = _int_list(args.batch_sizes, "--batch-sizes")
    populations = _int_list(args.population, "--population") if args.population else [None]
    rows_list = _int_list(args.memory_rows, "--memory-rows") if args.memory_rows else [None]
    if args.population:  # every row as populations train, a population of 1 too
        one_thread_per_process()
    config = apply_sets(resolve("copy", args.model), args.set)
    if args.memory_rows and not models.get(config.model.kind).has_memory:
        raise ValueError(f"--memory-rows: the {args.model} has no memory; leave it out")
    if not args.json:
        changed = f", {', '.join(args.set)}" if args.set else ""
        console.print(f"[bold]diffmem bench[/bold]: model {args.model} "
                      f"({models.get(args.model).description}), copy settings{changed}",
                      highlight=False)
    rows = []
    for n, members, size in itertools.product(rows_list, populations, sizes):
        if not args.json:
            what = "" if members is None else f"population {members}, "
            what += "" if n is None else f"{n} rows, "
            console.print(f"{what}batch {size}: compiling and timing for {args.seconds:g} s ...")
        rows += benchmark([size], seconds=args.seconds, config=config,
                          populations=None if members is None else [members],
                          memory_rows=None if n is None else [n])
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    console.print(bench_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
