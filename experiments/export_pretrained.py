"""Copy trained models into the package as the pretrained models behind `diffmem demo`.

    python experiments/export_pretrained.py results/reproduce/copy-ntm-lstm-default.json ...

Each argument is a reproduction record (written by experiments/reproduce.py) of a run that
reached its target. The record's run directory must still hold the run's best checkpoint
(the model its figures are of), and its step count must match the record. The model's
variables are written, without the optimiser state, with the run's configuration and a
``pretrained`` entry that says where the model came from: the command that trained it, and its
validation and generalisation figures.

Where it goes (``diffmem.demo.export_path``): src/diffmem/weights/TASK.safetensors, the task's
default model (what `diffmem demo TASK` runs), when the task ships no model yet or its default
is of the record's model kind, which it then replaces; otherwise TASK-MODEL.safetensors
(e.g. copy-dnc.safetensors, run by `diffmem demo copy --model dnc`), so that exporting another
model kind never changes a task's default. To make another kind the default, move away
TASK.safetensors and that kind's TASK-MODEL.safetensors before exporting it. With several
records of one task, the first exported becomes the default of a task that had none.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flax import nnx

from diffmem import checkpoint
from diffmem.demo import MAX_BYTES, export_path
from diffmem.trained import load


def export(record_path: Path) -> Path:
    record = json.loads(record_path.read_text())
    summary = record["summary"]
    if not summary["reached_target"]:
        raise SystemExit(f"{record_path}: the run did not reach its target; not exporting it")
    # The evaluated model: the best checkpoint (a run from before there was one: the last).
    best = summary.get("best")
    ckpt = Path(summary["run_dir"]) / (checkpoint.BEST if best else checkpoint.FILENAME)
    header = checkpoint.read_header(ckpt)
    step = best["step"] if best else summary["steps"]
    if header["step"] != step:
        raise SystemExit(f"{ckpt} is at step {header['step']}, the record at {step}")
    model, config = load(ckpt)
    meta = {
        "config": config.to_dict(), "step": header["step"], "counters": header["counters"],
        "status": header.get("status", "finished"),
        "pretrained": {
            "record": str(record_path), "command": record["command"],
            "sequences": summary["sequences"], "train_seconds": summary["train_seconds"],
            "machine": summary["machine"], "target_bits": summary["target_bits"],
            "validation": summary["validation"],
            "generalisation": [{k: g[k] for k in ("label", "bits", "wrong_bit_fraction")}
                               for g in summary["generalisation"]],
        },
    }
    out = export_path(config.task, config.model.kind)
    checkpoint.save(out, nnx.state(model), meta)  # no optimiser state
    size = out.stat().st_size
    if size >= MAX_BYTES:
        out.unlink()
        raise SystemExit(f"{out} would be {size:,} bytes, over the {MAX_BYTES:,} limit")
    print(f"{out}: {config.task}, {config.model.kind}, {size:,} bytes, validation "
          f"{summary['validation']['bits']:.4f} bits (target {summary['target_bits']:.4g})")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("records", nargs="+", type=Path)
    for path in p.parse_args(argv).records:
        export(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
