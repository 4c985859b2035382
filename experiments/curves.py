"""Validation curves and outcomes of every run under some directories, as one JSON record.

    python experiments/curves.py runs/diag/rc-gate --command "diffmem sweep ..." \
        --out results/batches/repeat-copy-gate-bias.json

Finds every run directory (a ``config.json`` beside a ``metrics.jsonl``) under the given
directories: single runs, a population's members or a sweep's trials. For each it writes the
settings that differ between the runs, the validation curve (sequences, validation bits, the
generalisation check's worst wrong-bit fraction) and, where the run has finished, its status,
the sequences and seconds to the target and its evaluation. It prints one line per run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from diffmem.training.summary import machine_description


def _flat(config: dict) -> dict:
    return {f"{section}.{k}": v for section in ("model", "train")
            for k, v in config[section].items()}


def run_record(run_dir: Path) -> dict:
    config = json.loads((run_dir / "config.json").read_text())
    points = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
              if line.strip()]
    curve = [[p["sequences"], round(p["val_bits"], 4),
              round(max(p["check"].values()), 4) if p.get("check") else None]
             for p in points if "val_bits" in p]
    record = {"run_dir": str(run_dir), "task": config["task"], "settings": _flat(config),
              "curve": curve}
    summary = run_dir / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        record["summary"] = {k: s.get(k) for k in (
            "status", "sequences", "train_seconds", "reached_target", "first_below_target",
            "best", "validation", "generalisation", "nonfinite_events")}
    return record


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dirs", nargs="+", type=Path)
    p.add_argument("--command", required=True, help="the command that trained the runs")
    p.add_argument("--note", default="", help="what the runs test")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    runs = [run_record(c.parent) for d in args.dirs for c in sorted(d.rglob("config.json"))
            if (c.parent / "metrics.jsonl").is_file()]
    if not runs:
        raise SystemExit(f"no run directories under {', '.join(map(str, args.dirs))}")
    # Only the settings that differ between the runs say what was compared. A field missing
    # from a run's configuration is newer than the run; it is recorded as None.
    keys = sorted(set().union(*(r["settings"] for r in runs)))
    varied = [k for k in keys if len({json.dumps(r["settings"].get(k)) for r in runs}) > 1]
    common = {k: runs[0]["settings"].get(k) for k in keys if k not in varied}
    for r in runs:
        r["varied"] = {k: r["settings"].get(k) for k in varied}
        del r["settings"]
        last = r["curve"][-1] if r["curve"] else None
        status = r.get("summary", {}).get("status", "unfinished")
        print(f"{r['varied']}: {status}; last point {last}")
    record = {"command": args.command, "note": args.note, "machine": machine_description(),
              "settings": common, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
