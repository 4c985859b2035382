"""Sweeps: a grid of settings, each grid point a population of seeds, on this machine or on Ray.

``diffmem sweep TASK --seeds 0-9 --grid train.lr=1e-3,3e-3 --out DIR`` trains the cross product
of the grid's values, each point as a population of the seeds (``diffmem.training.population``), and
writes one table of every run. A *trial* is one population: a grid point's seeds, or a share of
them where the points are fewer than the workers. The engines:

- ``local`` (the default): trials one after another in this process, or ``--parallel N`` side
  by side, each in its own process on its own core with single-threaded XLA;
- ``ray``: Ray Tune, a trial per worker, on this machine or a cluster (``--address auto``),
  with ``--cpus-per-trial`` and ``--gpus-per-trial`` (fractions let trials share a GPU).

    DIR/
      sweep.json               the sweep's settings, trials and wall time
      results.md, .csv, .json  one row per run, written when the sweep ends
      trials/NAME/             a trial's population directory (see diffmem.training.population)
        trial.json, attempts.jsonl   what the trial trains; each attempt at it
      ray/                     Ray Tune's experiment state (the ray engine)

Running the same command again goes on with an interrupted sweep: finished trials are kept,
unfinished ones resume from their members' checkpoints (on Ray, through ``Tuner.restore``).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diffmem import checkpoint, rundir
from diffmem.config import ConfigError, resolve
from diffmem.console import PopulationConsoleReporter, percent
from diffmem.machine import worker_xla_flags
from diffmem.overrides import apply_sets
from diffmem.training.interrupt import GracefulStop, StopRequested
from diffmem.training.population import (
    member_configs,
    member_names,
    read_population,
    train_population,
)
from diffmem.training.summary import machine_description

SETTINGS = "sweep.json"
TRIAL = "trial.json"
ATTEMPTS = "attempts.jsonl"
ENGINES = ("local", "ray")
RETRIES = 3  # Ray: how often a trial whose worker died is started again


@dataclass(frozen=True)
class Sweep:
    """What ``diffmem sweep`` trains: the task, the settings shared by every run, the grid
    and the seeds, and where it writes."""

    task: str
    out: Path
    seeds: tuple[int, ...]
    model: str | None = None
    preset: str = "default"
    sets: tuple[str, ...] = ()  # FIELD=VALUE for every run
    grid: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (FIELD, values)
    minutes: float | None = None
    parts: int = 1  # trials per grid point (its seeds shared out)

    def settings(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model, "preset": self.preset,
                "seeds": list(self.seeds), "sets": list(self.sets),
                "grid": {name: list(values) for name, values in self.grid},
                "minutes": self.minutes, "parts": self.parts}


@dataclass(frozen=True)
class Trial:
    """One population of a sweep: a grid point's assignments and (a share of) the seeds."""

    name: str
    point: tuple[str, ...]  # the grid's FIELD=VALUE assignments of this point
    seeds: tuple[int, ...]
    spec: dict[str, Any] = field(default_factory=dict)  # what a worker needs (JSON)


def parse_grid(items: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``FIELD=V1,V2`` items as (FIELD, values); a field given twice is an error."""
    grid = []
    for item in items:
        name, sep, raw = item.partition("=")
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        if not sep or not values:
            raise ConfigError(f"--grid {item!r} is not FIELD=V1,V2,..., e.g. "
                              "--grid train.lr=1e-3,3e-3")
        if name.strip() in [g[0] for g in grid]:
            raise ConfigError(f"--grid names {name.strip()} twice; give its values once")
        grid.append((name.strip(), values))
    return tuple(grid)


def plan(sweep: Sweep) -> list[Trial]:
    """The sweep's trials, each configuration checked (a bad value fails here, before any
    training)."""
    names = [name for name, _ in sweep.grid]
    trials = []
    for values in itertools.product(*(v for _, v in sweep.grid)):
        point = tuple(f"{n}={v}" for n, v in zip(names, values))
        config = base_config(sweep, point)  # raises ConfigError on a bad value
        point_name = "_".join(f"{n.split('.')[-1]}-{v}" for n, v in zip(names, values))
        point_name = re.sub(r"[^A-Za-z0-9_.+-]", "-", point_name) or "default"
        parts = min(sweep.parts, len(sweep.seeds))
        for part in range(parts):
            seeds = sweep.seeds[part::parts]
            name = point_name if parts == 1 else f"{point_name}_part-{part}"
            spec = {"task": sweep.task, "model": sweep.model, "preset": sweep.preset,
                    "sets": [*sweep.sets, *point], "minutes": sweep.minutes,
                    "seeds": list(seeds), "dir": str((sweep.out / "trials" / name).resolve())}
            trials.append(Trial(name, point, tuple(seeds), spec))
        del config
    return trials


def base_config(sweep: Sweep | dict[str, Any], point: Sequence[str] = ()):
    """The configuration of a grid point (or of a trial's spec), seed aside."""
    s = sweep if isinstance(sweep, dict) else {
        "task": sweep.task, "model": sweep.model, "preset": sweep.preset,
        "sets": [*sweep.sets, *point], "minutes": sweep.minutes}
    config = resolve(s["task"], s["model"], s["preset"])
    if s["minutes"] is not None:
        config = config.replace(train={"minutes": s["minutes"]})
    return apply_sets(config, list(s["sets"]))


def run_trial(spec: dict[str, Any], reporter=None, note: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """Train a trial's population, or go on with it; return its outcome (``trial_result``).
    Every attempt is recorded in ``attempts.jsonl`` (process, resumed or not, the members'
    sequences at its start, and ``note``)."""
    run_dir = Path(spec["dir"])
    configs = member_configs(base_config(spec), spec["seeds"])
    members = read_population(run_dir)
    if members is not None and _finished(run_dir):
        return trial_result(run_dir)  # finished in an earlier attempt
    run_dir.mkdir(parents=True, exist_ok=True)
    rundir.write_json(run_dir / TRIAL, spec)
    at = {}
    for m in members or []:
        path = run_dir / m["dir"] / checkpoint.FILENAME
        at[m["dir"]] = (checkpoint.read_header(path)["counters"]["sequences"]
                        if path.is_file() else 0)
    with open(run_dir / ATTEMPTS, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "resumed": members is not None,
                            "sequences": at, "time": time.time(), **(note or {})}) + "\n")
    train_population(configs, run_dir, resume=members is not None, reporter=reporter)
    return trial_result(run_dir)


def trial_result(run_dir: Path) -> dict[str, Any]:
    """A finished trial's figures, as Ray Tune reports them."""
    summaries = member_summaries(run_dir)
    done = [s for s in summaries if s is not None]
    return {"members": len(summaries), "finished": len(done),
            "reached_target": sum(bool(s["reached_target"]) for s in done),
            "passed_check": sum(bool(s.get("best") and s["best"]["passed"]) for s in done),
            "median_val_bits": statistics.median(
                [s["validation"]["bits"] for s in done if s["validation"]["bits"] is not None]
                or [float("nan")])}


def member_summaries(run_dir: Path) -> list[dict[str, Any] | None]:
    """Each member's summary.json (None where it has none) in the population's order."""
    members = read_population(run_dir) or []
    return [rundir.read_summary(run_dir / m["dir"]) for m in members]


# Engines.

def run(sweep: Sweep, engine: str = "local", parallel: int = 1, address: str | None = None,
        cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0, say=print) -> list[dict]:
    """Train every trial of ``sweep`` not yet finished with ``engine``, then write and
    return the results table's rows."""
    trials = plan(sweep)
    out = sweep.out
    out.mkdir(parents=True, exist_ok=True)
    record = _claim(sweep, trials)
    started = time.perf_counter()
    try:
        if engine == "local":
            _local(trials, parallel, say)
        elif engine == "ray":
            _ray(trials, out, address, cpus_per_trial, gpus_per_trial)
        else:
            raise ConfigError(f"--engine {engine!r} is not one of: {', '.join(ENGINES)}")
    finally:
        record["attempts"].append({"engine": engine, "parallel": parallel,
                                   "seconds": time.perf_counter() - started})
        record["seconds"] = sum(a["seconds"] for a in record["attempts"])
        rundir.write_json(out / SETTINGS, record)
    rows = collect(trials)
    write_results(out, sweep, rows, record["seconds"])
    return rows


def _claim(sweep: Sweep, trials: list[Trial]) -> dict[str, Any]:
    """The sweep's record: a new one, or the one of an interrupted sweep with the same
    settings (another sweep's directory is refused)."""
    path = sweep.out / SETTINGS
    settings = sweep.settings()
    if path.is_file():
        record = json.loads(path.read_text())
        if record["settings"] != settings:
            raise ConfigError(f"{sweep.out} holds a sweep with other settings "
                              f"({record['settings']}); choose another --out, or repeat that "
                              "sweep's command to go on with it")
        return record
    record = {"settings": settings, "trials": [t.name for t in trials],
              "command": " ".join(["diffmem", *sys.argv[1:]]) if sys.argv else "",
              "machine": machine_description(), "attempts": [], "seconds": 0.0}
    rundir.write_json(path, record)
    return record


def _local(trials: list[Trial], parallel: int, say) -> None:
    """Trials in this process one after another, or ``parallel`` at a time in processes of
    their own, each pinned to a core where ``taskset`` is available."""
    if parallel < 1:
        raise ConfigError(f"--parallel {parallel} must be at least 1")
    if parallel == 1:
        for trial in trials:
            say(f"trial {trial.name}: seeds {', '.join(map(str, trial.seeds))}")
            run_trial(trial.spec, reporter=PopulationConsoleReporter())
        return
    cores = list(range(os.cpu_count() or 1))
    waiting, running = list(trials), {}
    signals = GracefulStop()
    try:
        while waiting or running:
            if signals.received == signal.SIGTERM:  # Ctrl-C reaches the trials themselves
                for proc in running.values():
                    proc.send_signal(signal.SIGTERM)
            if signals.received:
                raise StopRequested(signals.received)
            while waiting and len(running) < parallel:
                trial = waiting.pop(0)
                free = sorted(set(cores) - {core for core, _ in running.values()})
                core = (free or cores)[0]
                running[trial.name] = (core, _spawn(trial, core, say))
            time.sleep(0.5)
            for name, (_, proc) in list(running.items()):
                if proc.poll() is not None:
                    del running[name]
                    if proc.returncode != 0:
                        log = Path(trials[0].spec["dir"]).parent / name / "log.txt"
                        raise ChildProcessError(f"trial {name} failed (exit "
                                                f"{proc.returncode}); see {log}")
                    say(f"trial {name}: finished")
    except BaseException:
        for _, proc in running.values():  # each saves its members and exits
            proc.wait()
        raise
    finally:
        signals.restore()


def _spawn(trial: Trial, core: int, say) -> subprocess.Popen:
    run_dir = Path(trial.spec["dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = run_dir / TRIAL
    rundir.write_json(spec, trial.spec)
    env = dict(os.environ, XLA_FLAGS=worker_xla_flags(1))
    command = [sys.executable, "-m", "diffmem.sweep", str(spec)]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        command = ["taskset", "-c", str(core), *command]
    say(f"trial {trial.name}: seeds {', '.join(map(str, trial.seeds))} on core {core} "
        f"(log: {run_dir / 'log.txt'})")
    log = open(run_dir / "log.txt", "a")  # noqa: SIM115 (the child writes it)
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def worker_env(cpus_per_trial: float, gpus_per_trial: float) -> dict[str, str]:
    """The environment of every Ray worker: XLA's threads on a CPU trial (and JAX kept off a
    GPU it was not given); no preallocation of GPU memory where trials share a GPU."""
    env = {"XLA_FLAGS": worker_xla_flags(int(cpus_per_trial))}
    if gpus_per_trial == 0:
        env["JAX_PLATFORMS"] = "cpu"
    elif gpus_per_trial < 1:
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                 "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _ray(trials: list[Trial], out: Path, address: str | None, cpus_per_trial: float,
         gpus_per_trial: float) -> None:
    try:
        import ray
        from ray import tune
    except ImportError:
        raise ConfigError('--engine ray needs Ray Tune: pip install "diffmem[ray]"') from None
    if cpus_per_trial <= 0 or gpus_per_trial < 0:
        raise ConfigError(f"--cpus-per-trial {cpus_per_trial} must be > 0 and "
                          f"--gpus-per-trial {gpus_per_trial} >= 0")
    if not ray.is_initialized():
        ray.init(address=address, runtime_env={"env_vars": worker_env(cpus_per_trial,
                                                                      gpus_per_trial)},
                 log_to_driver=False)
    have = ray.cluster_resources()
    for name, want in (("CPU", cpus_per_trial), ("GPU", gpus_per_trial)):
        if want > have.get(name, 0):  # Ray would wait for them for ever
            raise ConfigError(f"--{name.lower()}s-per-trial {want:g}: the Ray cluster has "
                              f"{have.get(name, 0):g} {name}s; ask for at most that many")
    trainable = tune.with_resources(_ray_trainable, {"cpu": cpus_per_trial,
                                                     "gpu": gpus_per_trial})
    path = (out / "ray").resolve()
    if tune.Tuner.can_restore(str(path)):
        tuner = tune.Tuner.restore(str(path), trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search([t.spec for t in trials])},
            run_config=tune.RunConfig(
                name="ray", storage_path=str(out.resolve()), verbose=1,
                # A trial whose worker dies is retried; it resumes from its checkpoints.
                failure_config=tune.FailureConfig(max_failures=RETRIES)))
    grid = tuner.fit()
    if grid.num_errors:
        raise ChildProcessError(
            f"{grid.num_errors} trial(s) failed after {RETRIES} retries; their errors are in "
            f"{path}; run the same command again to retry them")
    # Tune ends its run on Ctrl-C (having saved its state) and returns: a trial left
    # unfinished says so.
    if not all(_finished(Path(t.spec["dir"])) for t in trials):
        raise StopRequested(signal.SIGINT)


def _finished(run_dir: Path) -> bool:
    """Whether every member of a trial has its summary."""
    summaries = member_summaries(run_dir)
    return bool(summaries) and all(s is not None for s in summaries)


def _ray_trainable(config: dict[str, Any]) -> None:
    import ray
    from ray import tune

    node = ray.get_runtime_context().get_node_id()
    tune.report(run_trial(config["trial"], note={"node": node}))


# The results table.

COLUMNS = ["seed", "status", "target reached", "sequences to target", "seconds to target",
           "model at (sequences)", "val bits", "check passed", "non-finite events"]


def collect(trials: list[Trial]) -> list[dict[str, Any]]:
    """One row per run of every trial, by grid point and seed: its grid values, seed and
    outcome (a run that did not finish says so)."""
    points = list(dict.fromkeys(t.point for t in trials))  # in the grid's order
    keyed = []
    for trial in trials:
        run_dir = Path(trial.spec["dir"])
        values = dict(a.split("=", 1) for a in trial.point)
        configs = [base_config(trial.spec).replace(train={"seed": s}) for s in trial.seeds]
        for name, seed in zip(member_names(configs), trial.seeds):
            s = rundir.read_summary(run_dir / name) if (run_dir / name).is_dir() else None
            row = {**values, **summary_row(seed, s), "run_dir": str(run_dir / name)}
            keyed.append(((points.index(trial.point), seed), row))
    return [row for _, row in sorted(keyed, key=lambda item: item[0])]


def summary_row(seed: int, s: dict[str, Any] | None) -> dict[str, Any]:
    """A run's row of the table, from its summary.json (None: the run did not finish)."""
    if s is None:
        return {"seed": seed, "status": "not finished"}
    first, best = s["first_below_target"], s.get("best")
    row = {
        "seed": seed, "status": s["status"], "target reached": bool(s["reached_target"]),
        "sequences to target": first and first["sequences"],
        "seconds to target": first and round(first["seconds"], 1),
        "model at (sequences)": best["sequences"] if best else s["sequences"],
        "val bits": s["validation"]["bits"],
        "check passed": bool(best["passed"]) if best and best["check"] else None,
        "non-finite events": len(s["nonfinite_events"]),
    }
    if "restarts" in s:  # summaries from before restarts existed have no such figure
        row["restarts"] = len(s["restarts"])
    if "collapses" in s:  # as for restarts
        row["returns to best"] = len(s["collapses"])
    for g in s["generalisation"]:
        row[f"wrong bits, {g['label']}"] = g["wrong_bit_fraction"]
    # The paper's measure, in results.json and .csv (``bit_columns``) and the grid points' lines.
    row.update({f"bits, {g['label']}": g["bits"] for g in s["generalisation"]})
    return row


def bit_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The rows' columns of bits per sequence, one per evaluated size, in order."""
    return list(dict.fromkeys(k for row in rows for k in row if k.startswith("bits, ")))


def write_results(out: Path, sweep: Sweep, rows: list[dict[str, Any]], seconds: float) -> None:
    """``results.md``, ``results.csv`` and ``results.json`` in ``out``."""
    names = [name for name, _ in sweep.grid]
    rundir.write_json(out / "results.json", {"settings": sweep.settings(), "seconds": seconds,
                                             "rows": rows})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(rows, names) + bit_columns(rows) +
                            ["run_dir"],
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    rundir.atomic_write(out / "results.csv", buffer.getvalue())
    title = f"# Sweep: {sweep.task}" + (f", {sweep.model}" if sweep.model else "")
    rundir.atomic_write(out / "results.md", "\n".join([
        title, "", table(rows, names),
        f"- wall time of the whole sweep: {seconds / 60:.1f} minutes", ""]))


def columns(rows: list[dict[str, Any]], names: Sequence[str] = ()) -> list[str]:
    """The table's columns: the grid's fields, COLUMNS, then wrong bits at each size."""
    wrong = [k for row in rows for k in row if k.startswith("wrong bits")]
    counts = [k for k in ("restarts", "returns to best") if any(k in row for row in rows)]
    return list(dict.fromkeys([*names, *COLUMNS, *counts, *wrong]))


def table(rows: list[dict[str, Any]], names: Sequence[str] = ()) -> str:
    """A Markdown table of every run, then a line per grid point (``names`` are the grid's
    fields)."""
    cols = columns(rows, names)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(k, row.get(k)) for k in cols) + " |")
    lines.append("")
    for point, group in itertools.groupby(rows, key=lambda r: tuple(r.get(n) for n in names)):
        label = ", ".join(f"{n}={v}" for n, v in zip(names, point)) or "every run"
        lines.append(f"- {label}: " + point_line(list(group)))
    return "\n".join(lines)


def point_line(rows: list[dict[str, Any]]) -> str:
    """How a grid point's runs did, in a sentence."""
    reached = [r for r in rows if r.get("target reached")]
    seconds = [r["seconds to target"] for r in reached if r.get("seconds to target")]
    checked = [r for r in rows if r.get("check passed") is not None]
    text = f"{len(reached)} of {len(rows)} seeds reached the target"
    if seconds:
        text += (f", in {min(seconds):.0f} to {max(seconds):.0f} s (median "
                 f"{statistics.median(seconds):.0f} s)")
    text += f"; non-finite events: {sum(r.get('non-finite events') or 0 for r in rows)}"
    if any("restarts" in r for r in rows):
        text += f"; restarts: {sum(r.get('restarts') or 0 for r in rows)}"
    if any("returns to best" in r for r in rows):
        text += f"; returns to the best model: {sum(r.get('returns to best') or 0 for r in rows)}"
    if checked:
        text += (f"; {sum(r['check passed'] for r in checked)} of {len(checked)} evaluated "
                 "models passed the generalisation check")
    medians = [f"{k[len('bits, '):]} {statistics.median(v):.2f}" for k in bit_columns(rows)
               if (v := [r[k] for r in rows if r.get(k) is not None])]
    if medians:
        text += "; median bits per sequence: " + ", ".join(medians)
    unfinished = sum(r["status"] == "not finished" for r in rows)
    return text + (f"; {unfinished} not finished" if unfinished else "") + "."


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if key.startswith("wrong bits"):
        return percent(value)
    if key == "val bits":
        return f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}" if key != "seed" else str(value)
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """A local worker: ``python -m diffmem.sweep DIR/trials/NAME/trial.json``."""
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text())
    try:
        run_trial(spec, reporter=PopulationConsoleReporter())
    except KeyboardInterrupt as stop:  # the members are saved; the sweep resumes them
        return 128 + getattr(stop, "signum", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
