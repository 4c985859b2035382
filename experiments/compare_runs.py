"""Check that two run directories hold the same run, bit for bit, timings aside.

    python experiments/compare_runs.py RUN_A RUN_B

Compares the validation points of metrics.jsonl (without the fields that measure time), every
tensor of the last and the best checkpoints (parameters, optimiser state), summary.json
(without timings and the run directory) and config.json. Exits 0 when all are equal, 1
otherwise. Used to show that a refactoring leaves training unchanged: train the same command
with the code before and after, then compare the two runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from diffmem import checkpoint, rundir

# Fields that measure time, or say where the run was written.
UNTIMED_SUMMARY = {"train_seconds", "compile_seconds", "run_dir", "first_below_target", "machine"}


def untimed_metrics(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in record.items() if "second" not in k}
            for record in rundir.read_metrics(run_dir)]


def untimed_summary(run_dir: Path) -> dict:
    summary = {k: v for k, v in (rundir.read_summary(run_dir) or {}).items()
               if k not in UNTIMED_SUMMARY}
    if summary.get("best"):  # the best point's wall time
        summary["best"] = {k: v for k, v in summary["best"].items() if k != "seconds"}
    if summary.get("population"):  # where a population member's population was written
        summary["population"] = {k: v for k, v in summary["population"].items()
                                 if k != "run_dir"}
    return summary


def same_file(a: Path, b: Path) -> tuple[int, bool]:
    """The number of tensors of checkpoint ``a``, and whether ``b`` has the same tensors and
    step (neither file: (0, True))."""
    if not a.exists() and not b.exists():
        return 0, True
    ta, ha = checkpoint.read(a)
    tb, hb = checkpoint.read(b)
    same = sorted(ta) == sorted(tb) and all(
        ta[k].dtype == tb[k].dtype and np.array_equal(ta[k], tb[k]) for k in ta)
    return len(ta), same and ha["step"] == hb["step"]


def compare(a: Path, b: Path) -> list[tuple[str, bool]]:
    """(what, equal) for each part of the two runs."""
    last, same_last = same_file(a / checkpoint.FILENAME, b / checkpoint.FILENAME)
    best, same_best = same_file(a / checkpoint.BEST, b / checkpoint.BEST)
    return [
        (f"metrics.jsonl ({len(untimed_metrics(a))} validation points, timings aside)",
         untimed_metrics(a) == untimed_metrics(b)),
        (f"checkpoint tensors ({last}) and step", same_last),
        (f"best checkpoint tensors ({best}) and step", same_best),
        ("summary.json, timings aside", untimed_summary(a) == untimed_summary(b)),
        ("config.json", rundir.read_config(a) == rundir.read_config(b)),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    args = p.parse_args(argv)
    results = compare(args.run_a, args.run_b)
    for what, equal in results:
        print(f"{'same' if equal else 'DIFFERENT'}: {what}")
    return 0 if all(equal for _, equal in results) else 1


if __name__ == "__main__":
    sys.exit(main())
