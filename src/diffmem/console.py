"""What the command line shows: training progress, result tables, warnings and errors.

On a terminal, training shows a live progress bar; written to a file or a pipe (a log), it
prints one plain line per log point instead, since a bar cut to 80 columns is unreadable there.
The time left is that of the budget that binds: the minutes, or the sequences at the current
speed, whichever ends the run first.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from diffmem.config import paper_parameters
from diffmem.training.reporter import Reporter

console = Console()


def warn(text: str) -> None:
    console.print(f"[yellow]warning:[/yellow] {text}", highlight=False, soft_wrap=True)


def error(text: str) -> None:
    console.print(f"[red]error:[/red] {text}", highlight=False, soft_wrap=True)


def _clock(seconds: float | None) -> str:
    return "-:--:--" if seconds is None else str(datetime.timedelta(seconds=round(seconds)))


def _number(value: float | None, spec: str) -> str:
    return "nan" if value is None else format(value, spec)


def percent(fraction: float | None, places: int = 2) -> str:
    """A share as a percentage with ``places`` decimals; one that is above 0 but would print
    as zero prints as "<0.01%", so that "0.00%" always means none (one wrong bit of a
    1,000-sequence evaluation at length 50 is 0.00025%)."""
    if fraction is None:
        return "nan%"
    text = f"{100 * fraction:.{places}f}"
    if fraction > 0 and float(text) == 0:
        return f"<{10 ** -places:.{places}f}%"
    return text + "%"


def _check(r: dict[str, Any]) -> str:
    """A log point's generalisation check as wrong bits per size, e.g. " (wrong at length 30
    0.00%, length 120 1.20%)"; "" without one."""
    check = r.get("check")
    if not check:
        return ""
    sizes = ", ".join(f"{label} {percent(w)}" for label, w in check.items())
    return f" (wrong at {sizes})"


class _TimeLeft(ProgressColumn):
    """The time left of the binding budget (see ``ConsoleReporter.time_left``)."""

    def __init__(self, reporter: ConsoleReporter) -> None:
        super().__init__()
        self.reporter = reporter

    def render(self, task) -> Text:
        left = self.reporter.time_left(task.speed)
        return Text(f"{_clock(left)} left", style="progress.remaining")


class ConsoleReporter(Reporter):
    """Training progress for ``diffmem train``: a line saying what trains, then a live bar on
    a terminal or a plain line per log point elsewhere, then a summary table."""

    def __init__(self, out: Console | None = None) -> None:
        self.console = out or console
        self.progress: Progress | None = None
        self.minutes: float | None = None
        self.total = self.done = 0
        self.started, self.seconds = time.perf_counter(), 0.0

    def start(self, configs, names: list[str], parameters: int, sequences: int,
              compile_seconds: float, seconds: float = 0.0) -> None:
        config = configs[0]
        t = config.train
        self.begin(config, parameters, f"{t.lr:g}, seed {t.seed}", t.sequences, sequences,
                   compile_seconds, seconds)
        if self.console.is_terminal:
            self.bar("seq  loss {task.fields[loss]}  bits {task.fields[bits]}  "
                     "val {task.fields[val]}  {task.fields[speed]} seq/s",
                     loss="-", bits="-", val="-", speed="-")

    def begin(self, config, parameters: int, rates: str, total: int, done: int,
              compile_seconds: float, seconds: float, per: str = "") -> None:
        """Set the budget (``total`` sequences, ``done`` of them already) and print the line
        saying what trains; ``rates`` follows "lr", ``per`` the budget."""
        t = config.train
        self.minutes, self.total, self.done = t.minutes, total, done
        self.started, self.seconds = time.perf_counter(), seconds
        budget = f"{t.sequences:,} sequences" + (f" or {t.minutes:g} minutes" if t.minutes else "")
        paper = paper_parameters(config)
        versus = f", the paper's {paper:,}" if paper else ""
        self.console.print(
            f"[bold]diffmem train {config.task}[/bold] ({config.preset} preset): "
            f"{config.model.kind} ({parameters:,} parameters{versus}), batch {t.batch_size}, "
            f"{t.optimizer} lr {rates}; budget {budget}{per}; "
            f"compiled in {compile_seconds:.1f} s",
            highlight=False,
        )

    def bar(self, fields: str, **values: str) -> None:
        """Start the live bar over the budget's sequences, ``fields`` (a rich template of
        ``values``) after the count."""
        self.progress = Progress(
            TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn(fields),
            TimeElapsedColumn(), _TimeLeft(self), console=self.console,
        )
        self.progress.start()
        self.task_id = self.progress.add_task("train", total=self.total, completed=self.done,
                                              **values)

    def elapsed(self) -> float:
        """The run's wall time, earlier attempts and compilation included."""
        return self.seconds + time.perf_counter() - self.started

    def time_left(self, speed: float | None) -> float | None:
        """Seconds until the binding budget ends the run at ``speed`` sequences per second:
        the minutes left, or the sequences left at that speed, whichever is shorter (None
        while neither is known). Early stopping may end it sooner."""
        left = []
        if self.minutes is not None:
            left.append(max(0.0, self.minutes * 60.0 - self.elapsed()))
        if speed:
            left.append(max(0, self.total - self.done) / speed)
        return min(left, default=None)

    def advance(self, sequences: int) -> None:
        self.done += sequences
        if self.progress is not None:
            self.progress.advance(self.task_id, sequences)

    def log(self, name: str, r: dict[str, Any]) -> None:
        loss, bits = _number(r["loss"], ".3f"), _number(r["bits"], ".3f")
        val, speed = _number(r["val_bits"], ".3f"), _number(r["sequences_per_second"], ",.0f")
        if self.progress is not None:
            self.progress.update(self.task_id, loss=loss, bits=bits, val=val, speed=speed)
            return
        left = self.time_left(r["sequences_per_second"])
        self.console.print(
            f"{r['sequences']:>10,} seq  {_clock(r['wall_seconds'])}  loss {loss}  bits {bits}"
            f"  val {val}{_check(r)}  {speed} seq/s  {_clock(left)} left", highlight=False,
            soft_wrap=True)

    def rewind(self, sequences: int) -> None:
        self.done -= sequences
        if self.progress is not None:
            self.progress.update(self.task_id, completed=self.done)

    def message(self, text: str) -> None:
        self.console.print(text)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def summary(self, summaries: list[dict[str, Any]]) -> None:
        for s in summaries:
            self.console.print(summary_table(s))


class PopulationConsoleReporter(Reporter):
    """Progress of a population (``diffmem train --seeds``): a line saying what trains, a live
    bar over all members' sequences on a terminal (a plain line per member's log point
    elsewhere), a line per member as it stops, then one table with a row per member."""

    def __init__(self, out: Console | None = None) -> None:
        self.console = out or console
        self.single = ConsoleReporter(self.console)  # the bar and the time left
        self.names: list[str] = []

    def start(self, configs, names: list[str], parameters: int, sequences: int,
              compile_seconds: float, seconds: float = 0.0) -> None:
        config, t = configs[0], configs[0].train
        self.names = names
        rates = ", ".join(f"{r:g}" for r in sorted({c.train.lr for c in configs}))
        self.single.begin(
            config, parameters,
            f"{rates}; a population of {len(configs)} members (seeds {_seeds(configs)}) in one "
            "compiled update", t.sequences * len(configs), sequences, compile_seconds, seconds,
            per=" per member")
        if not self.console.is_terminal:
            return
        self.single.bar("seq  running {task.fields[running]}  best val {task.fields[val]}  "
                        "{task.fields[speed]} seq/s", running=f"{len(names)}", val="-",
                        speed="-")
        self.best: dict[str, float] = {}
        self.running = set(names)

    def advance(self, sequences: int) -> None:
        self.single.advance(sequences)

    def log(self, name: str, r: dict[str, Any]) -> None:
        single = self.single
        if single.progress is None:
            self.console.print(f"{name:>10}  " if len(self.names) > 1 else "", end="")
            single.log(name, r)
            return
        if not hasattr(self, "best"):
            return
        if r["val_bits"] is not None:
            self.best[name] = r["val_bits"]
        speed = r["sequences_per_second"] or 0.0
        single.progress.update(
            single.task_id, running=f"{len(self.running)}",
            val=_number(min(self.best.values(), default=None), ".3f"),
            speed=f"{speed * len(self.running):,.0f}")

    def message(self, text: str) -> None:
        self.console.print(text)

    def rewind(self, sequences: int) -> None:
        self.single.rewind(sequences)

    def finished(self, name: str, s: dict[str, Any]) -> None:
        if hasattr(self, "running"):
            self.running.discard(name)
        first = s["first_below_target"]
        reached = ("target reached" if s["reached_target"] else "target NOT reached")
        when = "" if first is None else f" (first at {first['sequences']:,} sequences)"
        self.console.print(f"{name}: stopped ({s['status']}) at {s['sequences']:,} sequences, "
                           f"{s['train_seconds']:.0f} s; {reached}{when}", highlight=False)

    def stop(self) -> None:
        self.single.stop()

    def summary(self, summaries: list[dict[str, Any]]) -> None:
        self.console.print(population_table(summaries))


def _seeds(configs) -> str:
    seeds = sorted({c.train.seed for c in configs})
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def population_table(summaries: list[dict[str, Any]]) -> Table:
    """A population's members (their summary.json), one row each; wrong bits at the largest
    size evaluated (all sizes: ``diffmem sweep``'s table, or each member's summary)."""
    first = summaries[0]
    largest = first["generalisation"][-1]["label"]
    table = Table(title=f"Population: {first['task']}, {first['model']}, "
                        f"{len(summaries)} members")
    for name in ("member", "status", "first below target", "val bits", f"wrong, {largest}",
                 "non-finite"):
        table.add_column(name, justify="right")
    for s in summaries:
        f = s["first_below_target"]
        table.add_row(
            Path(s["run_dir"]).name, s["status"],
            "never" if f is None else f"{f['sequences']:,} seq, {f['seconds']:.0f} s",
            _number(s["validation"]["bits"], ".4f"),
            percent(s['generalisation'][-1]['wrong_bit_fraction']),
            str(len(s["nonfinite_events"])))
    return table


def summary_table(s: dict[str, Any]) -> Table:
    """A finished run's summary (its summary.json) as a two-column table."""
    v = s["validation"]
    table = Table(title=f"Summary: {s['task']}, {s['model']} ({s['status']})", show_header=False)
    table.add_column(justify="right", style="bold")
    table.add_column()
    first = s["first_below_target"]
    target = (f"target < {s['target_bits']:.4g}: "
              f"{'reached' if s['reached_target'] else 'NOT reached'}"
              if s["target_bits"] > 0 else "no target: trained for its budget")
    rows = [
        ("sequences", f"{s['sequences']:,} ({s['steps']:,} updates)"),
        ("time", f"{s['train_seconds']:.1f} s, compilation ({s['compile_seconds']:.1f} s) "
                 "included"),
        ("validation bits / seq", f"{v['bits']:.4f} ({target})"),
    ]
    if "accuracy" in v:
        rows.append(("validation accuracy", f"{100 * v['accuracy']:.3f}% of the scored steps "
                                            f"of {v['sequences']:,} sequences"))
    if "optimal_bits" in v:
        rows.append(("optimal predictor", f"{v['optimal_bits']:.4f} bits / seq on the same "
                                          f"{v['sequences']:,} sequences"))
    rows += [
        ("validation wrong steps / seq" if "accuracy" in v else "validation bit errors / seq",
         f"{v['bit_errors']:.3f}"),
    ]
    if s["target_bits"] > 0:
        rows.append(("first below target", "never" if first is None else
                     f"after {first['sequences']:,} sequences, {first['seconds']:.1f} s"))
    best = s.get("best")
    if best is not None:
        check = "".join(f"; {r['label']}: {percent(r['wrong_bit_fraction'])} wrong (at most "
                        f"{100 * r['tolerance']:g}%)" for r in best["check"]
                        if r["wrong_bit_fraction"] is not None)
        verdict = ("" if not best["check"] else
                   ", generalisation check passed" if best["passed"] else
                   ", generalisation check NOT passed")
        rows.append(("model evaluated", f"the best checkpoint, at {best['sequences']:,} "
                                        f"sequences{verdict}{check}"))
    for label, value in rows:
        table.add_row(label, value)
    for g in s["generalisation"]:
        if "accuracy" in g:
            table.add_row(g["label"], f"{g['bits']:.4f} bits, {g['bit_errors']:.3f} wrong steps "
                                      f"per sequence ({100 * g['accuracy']:.3f}% right)")
            continue
        optimum = f" (optimal predictor {g['optimal_bits']:.4f})" if "optimal_bits" in g else ""
        table.add_row(g["label"], f"{g['bits']:.4f} bits{optimum}, {g['bit_errors']:.3f} bit "
                                  f"errors per sequence ({percent(g['wrong_bit_fraction'], 3)} "
                                  "wrong)")
    table.add_row("run directory", s["run_dir"])
    return table


def eval_table(rows: list[dict[str, Any]], title: str) -> Table:
    """``diffmem.training.evaluate``'s rows: bits, bit errors and wrong bits per size (for
    class targets: bits, wrong steps and accuracy)."""
    table = Table(title=title)
    if any("accuracy" in r for r in rows):
        for name in ("size", "bits / sequence", "wrong steps / sequence", "accuracy"):
            table.add_column(name, justify="right")
        for r in rows:
            table.add_row(r["label"], f"{r['bits']:.4f}", f"{r['bit_errors']:.3f}",
                          f"{100 * r['accuracy']:.3f}%")
        return table
    optimum = any("optimal_bits" in r for r in rows)
    names = ["size", "bits / sequence"] + (["optimal predictor"] if optimum else [])
    for name in names + ["bit errors / sequence", "wrong bits"]:
        table.add_column(name, justify="right")
    for r in rows:
        cells = [r["label"], f"{r['bits']:.4f}"]
        if optimum:
            cells.append(f"{r['optimal_bits']:.4f}" if "optimal_bits" in r else "-")
        table.add_row(*cells, f"{r['bit_errors']:.3f}", percent(r['wrong_bit_fraction'], 3))
    return table


def demo_table(metrics: dict[str, float], title: str) -> Table:
    """One sequence's bits, bit errors and wrong bits (and the optimal predictor's bits)."""
    table = Table(title=title)
    for name in ("bits / sequence", "bit errors", "wrong bits"):
        table.add_column(name, justify="right")
    cells = [f"{metrics['bits']:.4f}", f"{metrics['bit_errors']:.0f}",
             percent(metrics['wrong_bit_fraction'])]
    if "optimal_bits" in metrics:
        table.add_column("optimal predictor", justify="right")
        cells.append(f"{metrics['optimal_bits']:.4f}")
    table.add_row(*cells)
    return table


def bench_table(rows: list[dict[str, Any]]) -> Table:
    """``diffmem.bench.benchmark``'s rows: throughput per batch size."""
    # An NTM's initial weightings are N wide: its count varies with --memory-rows.
    counts = len({r["parameters"] for r in rows}) > 1
    what = "" if counts else f", {rows[0]['parameters']:,} parameters"
    table = Table(title=f"Training throughput, copy length 20 ({rows[0]['time_steps']} "
                        f"steps){what}\n{rows[0]['device']}")
    members = "population" in rows[0]
    sizes = len({r.get("memory_rows") for r in rows}) > 1
    for name in ((["memory rows"] if sizes else []) + (["parameters"] if counts else [])
                 + (["population"] if members else [])
                 + ["batch size", "sequences / s", "updates / s", "ms / step", "peak MB",
                    "resident MB", "compile s"]):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(*([str(r["memory_rows"])] if sizes else []),
                      *([f"{r['parameters']:,}"] if counts else []),
                      *([str(r["population"])] if members else []), str(r["batch_size"]),
                      f"{r['sequences_per_second']:,.1f}", f"{r['updates_per_second']:,.1f}",
                      f"{r['step_ms']:.3g}", f"{r['peak_bytes'] / 1e6:,.1f}",
                      f"{r['resident_peak_bytes'] / 1e6:,.0f}", f"{r['compile_seconds']:.1f}")
    return table
