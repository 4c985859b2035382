"""Train one configuration with several seeds, one after the other, and tabulate the outcome.

Used for the seed studies (experiments/seed_study.sh, results/seeds/) and the
memory-initialisation comparison (results/memory-init/), for example:

    python experiments/sweep.py copy --seeds 0-4 --minutes 10 \
        --out results/memory-init/copy-init-constant.json
    python experiments/sweep.py copy --seeds 0-2 --set model.memory_init=learned \
        --out results/memory-init/copy-init-learned.json

`python experiments/sweep.py --table RESULTS.json [...]` prints the table of results files
(for example of one sweep split over two processes) without training.

Each seed runs `diffmem.train.train_and_evaluate` with the task's default configuration (plus
any --set overrides) in its own run directory under --runs. The results file holds every run's
summary; the printed Markdown table has, per seed: whether the target was reached, sequences
and seconds until validation first went below the target, where the evaluated model (the best
checkpoint) is from and its validation bits, the wrong-bit fractions at the generalisation
sizes, and the number of non-finite steps.

An interrupted sweep (Ctrl-C, SIGTERM) goes on where it stopped when run again with the same
command: seeds already in the results file are kept, and the seed it was training resumes
exactly from its run directory's last checkpoint (`diffmem train --resume`), its earlier
minutes counting against its budget. Only a run directory of the same configuration is taken
up this way; run one sweep at a time per --runs folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from diffmem import checkpoint, rundir
from diffmem.config import Config, apply_overrides, resolve
from diffmem.train import machine_description, train_and_evaluate


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = (int(v) for v in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(v) for v in text.split(",")]


def main() -> int:
    try:
        return sweep()
    except KeyboardInterrupt as stop:  # the training loop saved the seed's run
        print("sweep interrupted: run the same command again to go on (finished seeds are "
              "kept; the interrupted one resumes from its last checkpoint, if it had reached "
              "one)", file=sys.stderr)
        return 128 + getattr(stop, "signum", 2)
    except checkpoint.CheckpointError as err:  # e.g. an unfinished run of other settings
        print(f"error: {err}", file=sys.stderr)
        return 2


def sweep() -> int:
    if sys.argv[1:2] == ["--table"]:  # print the table of results files, training nothing
        runs = [r for path in sys.argv[2:] for r in json.loads(Path(path).read_text())["runs"]]
        print(table(sorted(runs, key=lambda r: r["seed"])))
        return 0
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task")
    p.add_argument("--model", help="default: the task's default model")
    p.add_argument("--preset", default="default")
    p.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,3,7")
    p.add_argument("--minutes", type=float,
                   help="budget per seed (default: the configuration's own budget)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--runs", default="runs/sweep", help="parent of the run directories")
    p.add_argument("--out", required=True, help="results JSON file")
    args = p.parse_args()

    base = resolve(args.task, args.model, args.preset)
    if args.minutes is not None:
        base = base.replace(train={"minutes": args.minutes})
    base = apply_overrides(base, args.set)
    tag = "-".join(s.replace("=", "").replace(".", "_") for s in args.set) or args.preset
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Seeds already in the results file are kept, so an interrupted sweep can be run again.
    results = []
    if out.exists():
        earlier = json.loads(out.read_text())
        # The whole configuration but the seed must match: a changed default is another sweep.
        settings = {"task": args.task, "model": base.model.kind, "preset": args.preset,
                    "overrides": args.set, "minutes_per_seed": base.train.minutes,
                    "config": _unseeded(base)}
        differ = {k: earlier.get(k) for k, v in settings.items() if earlier.get(k) != v}
        if differ:
            raise SystemExit(f"{out} holds a sweep with other settings ({differ}); "
                             "choose another --out")
        results = earlier["runs"]
    done = {r["seed"] for r in results}
    for seed in parse_seeds(args.seeds):
        if seed in done:
            continue
        config = base.replace(train={"seed": seed})
        name = f"{args.task}-{base.model.kind}-{tag}-seed{seed}"
        run_dir = earlier_run(Path(args.runs), name, config)
        if run_dir is not None and rundir.read_summary(run_dir) is not None:
            # Finished, but interrupted before the results file was written.
            print(f"seed {seed}: already trained in {run_dir}", file=sys.stderr, flush=True)
            summary = rundir.read_summary(run_dir)
        elif run_dir is not None:
            print(f"seed {seed}: resuming {run_dir}", file=sys.stderr, flush=True)
            summary = train_and_evaluate(config, run_dir, resume=True).summary
        else:
            run_dir = Path(args.runs) / f"{name}-{int(time.time())}"
            summary = train_and_evaluate(config, run_dir).summary
        metrics = rundir.read_metrics(run_dir)
        summary["nan_points"] = sum(1 for m in metrics if m["loss"] is None)
        summary["nonfinite_stop"] = summary["status"].startswith("stopped: non-finite")
        results.append(summary)
        print(f"seed {seed}: {summary['status']}, {summary['validation']['bits']:.4f} bits",
              file=sys.stderr, flush=True)
        record = {"task": args.task, "model": base.model.kind, "preset": args.preset,
                  "overrides": args.set, "minutes_per_seed": base.train.minutes,
                  "config": _unseeded(base), "machine": machine_description(),
                  "command": " ".join(sys.argv),
                  "runs": sorted(results, key=lambda r: r["seed"])}
        rundir.write_json(out, record)  # atomically: an interrupt cannot truncate it
    print(table(sorted(results, key=lambda r: r["seed"])))
    return 0


def earlier_run(runs: Path, name: str, config: Config) -> Path | None:
    """The newest run directory of this seed (``name``-TIME) with ``config`` and a checkpoint:
    finished (it has a summary) or left by an interruption. None if there is none."""
    def same_config(run: Path) -> bool:
        try:
            return rundir.read_config(run) == config
        except (OSError, ValueError):  # missing, damaged or of another version
            return False

    runs_of_seed = [d for d in runs.glob(f"{name}-*")
                    if (d / checkpoint.FILENAME).exists() and same_config(d)]
    return max(runs_of_seed, key=lambda d: d.name, default=None)


def _unseeded(config) -> dict:
    """The configuration as a dictionary, without the seed (which each run sets)."""
    data = config.to_dict()
    data["train"] = {k: v for k, v in data["train"].items() if k != "seed"}
    return data


def table(results: list[dict]) -> str:
    sizes = [g["label"] for g in results[0]["generalisation"]]
    head = ["seed", "target reached", "sequences to target", "seconds to target",
            "model at (sequences)", "val bits"] + [f"wrong bits, {s}" for s in sizes] + [
            "non-finite events"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        first, best = r["first_below_target"], r.get("best")
        row = [str(r["seed"]),
               "yes" if r["reached_target"] else "**no**",
               f"{first['sequences']:,}" if first else "never",
               f"{first['seconds']:.0f}" if first else "-",
               # The evaluated model: the best checkpoint's, or (before 0.8) the last.
               f"{best['sequences']:,}" if best else f"{r['sequences']:,} (last)",
               f"{r['validation']['bits']:.4f}"]
        row += [f"{100 * g['wrong_bit_fraction']:.2f}%" for g in r["generalisation"]]
        row += [str(_nonfinite(r))]
        lines.append("| " + " | ".join(row) + " |")
    reached = [r for r in results if r["reached_target"]]
    seconds = [r["first_below_target"]["seconds"] for r in reached if r["first_below_target"]]
    lines.append("")
    lines.append(f"{len(reached)} of {len(results)} seeds reached the target"
                 + (f", in {min(seconds):.0f} to {max(seconds):.0f} s (median "
                    f"{statistics.median(seconds):.0f} s)" if seconds else "")
                 + f"; non-finite events: {sum(_nonfinite(r) for r in results)}.")
    checked = [r["best"] for r in results if r.get("best") and r["best"]["check"]]
    if checked:
        lines.append(f"{sum(b['passed'] for b in checked)} of {len(checked)} evaluated models "
                     "passed the generalisation check of the training run.")
    return "\n".join(lines)


def _nonfinite(summary: dict) -> int:
    """Non-finite events of a run: those it rolled back from and the one that stopped it
    (summaries of diffmem 0.3 and later list them; earlier ones only say whether it stopped)."""
    if "nonfinite_events" in summary:
        return len(summary["nonfinite_events"])
    return int(summary["nonfinite_stop"])


if __name__ == "__main__":
    sys.exit(main())
