"""Copy trained models into the package as the pretrained models behind `diffmem demo`.

    python experiments/export_pretrained.py results/reproduce/copy-ntm-lstm-default.json ...

Each argument is a reproduction record (written by experiments/reproduce.py) of a run that
reached its target. The record's run directory must still hold the run's final checkpoint,
and its step count must match the record. The model's variables are written, without the
optimiser state, to src/diffmem/weights/TASK.safetensors, with the run's configuration and a
``pretrained`` entry that says where the model came from: the command that trained it, and its
validation and generalisation figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flax import nnx

from diffmem import checkpoint
from diffmem.demo import MAX_BYTES, WEIGHTS
from diffmem.models import load


def export(record_path: Path) -> Path:
    record = json.loads(record_path.read_text())
    summary = record["summary"]
    if not summary["reached_target"]:
        raise SystemExit(f"{record_path}: the run did not reach its target; not exporting it")
    ckpt = Path(summary["run_dir"]) / checkpoint.FILENAME
    _, header = checkpoint.read(ckpt)
    if header["step"] != summary["steps"]:
        raise SystemExit(f"{ckpt} is at step {header['step']}, the record at {summary['steps']}")
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
    out = WEIGHTS / f"{config.task}.safetensors"
    checkpoint.save(out, nnx.state(model), meta)  # no optimiser state
    size = out.stat().st_size
    if size >= MAX_BYTES:
        out.unlink()
        raise SystemExit(f"{out} would be {size:,} bytes, over the {MAX_BYTES:,} limit")
    print(f"{out}: {config.task}, {config.model.kind}, {size:,} bytes, validation "
          f"{summary['validation']['bits']:.4f} bits (target {summary['target_bits']:.4g})")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("records", nargs="+", type=Path)
    for path in p.parse_args().records:
        export(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
