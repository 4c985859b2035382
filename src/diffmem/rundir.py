"""A run directory's files, read and written in this one module.

    RUN_DIR/
      config.json               the resolved configuration (``write_config``, ``read_config``)
      metrics.jsonl             one JSON object per validation point (``append_metrics``, ...)
      checkpoint.safetensors    the last log point: parameters, optimiser state and counters,
                                for resuming (``diffmem.checkpoint``)
      best.safetensors          the best log point's model, for evaluation (``diffmem.training``)
      summary.json              the outcome, written once training ends (``write_summary``)
      tensorboard/              TensorBoard event files (``tensorboard_writer``)

Every whole-file write goes through ``atomic_write``: a temporary file beside the target,
flushed to disk, then renamed over it, so that a crash or an interrupt leaves the old file or
the new one, never part of one.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from diffmem.config import Config

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
TENSORBOARD = "tensorboard"


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file and a rename."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them current
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, data: Any, indent: int = 2) -> Path:
    """Atomically write ``data`` as JSON; a non-finite float is an error, never ``NaN``."""
    return atomic_write(path, json.dumps(data, indent=indent, allow_nan=False) + "\n")


def finite_or_none(x: Any) -> Any:
    """``x`` with every non-finite float (in nested dicts and lists too) replaced by None, so
    that the files stay strict JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [finite_or_none(v) for v in x]
    return x


def _not_a_run(run_dir: str | os.PathLike, name: str) -> ValueError:
    return ValueError(f"{run_dir} is not a diffmem run directory: it has no {name}")


# config.json

def write_config(run_dir: str | os.PathLike, config) -> Path:
    return write_json(Path(run_dir) / CONFIG, config.to_dict())


def read_config(run_dir: str | os.PathLike):
    """The run's resolved configuration (a ``diffmem.config.Config``)."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise _not_a_run(run_dir, CONFIG)
    try:
        return Config.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as err:
        raise ValueError(f"{path} is not a valid diffmem configuration ({err}); the run "
                         "directory is damaged or from an incompatible version") from None


# metrics.jsonl

def start_metrics(run_dir: str | os.PathLike) -> None:
    atomic_write(Path(run_dir) / METRICS, "")


def append_metrics(run_dir: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one validation point (a line of strict JSON)."""
    with open(Path(run_dir) / METRICS, "a") as f:
        f.write(json.dumps(finite_or_none(record), allow_nan=False) + "\n")


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The run's validation points, in order."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        raise _not_a_run(run_dir, METRICS)
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}, line {number}, is not valid JSON ({err.msg}); the file "
                             "is damaged: remove that line or rerun") from None
        if not isinstance(records[-1], dict) or "sequences" not in records[-1]:
            raise ValueError(f"{path}, line {number}, is not a diffmem validation point")
    return records


def truncate_metrics(run_dir: str | os.PathLike, sequences: int) -> None:
    """Keep the validation points up to ``sequences``: a resumed run drops those logged after
    its checkpoint (a kill between the two writes), and a line cut short by a kill."""
    path = Path(run_dir) / METRICS
    kept = []
    for line in path.read_text().splitlines(keepends=True):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record["sequences"] <= sequences:
            kept.append(line)
    atomic_write(path, "".join(kept))


# summary.json

def write_summary(run_dir: str | os.PathLike, summary: dict[str, Any]) -> Path:
    return write_json(Path(run_dir) / SUMMARY, finite_or_none(summary))


def read_summary(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run's summary, or None while the run has not finished."""
    path = Path(run_dir) / SUMMARY
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err.msg}): the file is damaged; "
                         "remove it to use the run without its summary") from None


# tensorboard/

def tensorboard_writer(run_dir: str | os.PathLike, config, resume_at: int | None = None):
    """A TensorBoard writer for the run, or None when ``config.train.tensorboard`` is off.

    A fresh run (``resume_at`` None) first removes event files that an attempt without a
    checkpoint left; a run resumed at ``resume_at`` sequences drops the events logged after
    its checkpoint, as ``truncate_metrics`` drops lines, so that both show one curve.
    """
    if not config.train.tensorboard:
        return None
    from tensorboardX import SummaryWriter  # imported here: it is slow to import

    folder = Path(run_dir) / TENSORBOARD
    if resume_at is None:
        for stale in folder.glob("events.out.tfevents.*"):
            stale.unlink()
    # Event files are named by the second they were opened in; a resumed run opened within
    # the same second would overwrite the first one's file. The suffix keeps the names apart
    # and, equal in length, in the order they were written, which TensorBoard reads them in.
    writer = SummaryWriter(str(folder), purge_step=None if resume_at is None else resume_at + 1,
                           filename_suffix=f".{time.time_ns()}")
    if resume_at is None:
        writer.add_text("config", "```\n" + json.dumps(config.to_dict(), indent=2) + "\n```", 0)
    return writer


def log_scalars(writer, record: dict[str, Any], grad_norm: float) -> None:
    """One validation point's metrics as TensorBoard scalars, against sequences seen."""
    scalars = {
        "train/loss": record["loss"], "train/bits_per_sequence": record["bits"],
        "train/bit_errors_per_sequence": record["bit_errors"], "train/grad_norm": grad_norm,
        "validation/bits_per_sequence": record["val_bits"],
        "validation/bit_errors_per_sequence": record["val_bit_errors"],
        "train/learning_rate": record["lr"],
        "speed/sequences_per_second": record["sequences_per_second"],
    }
    for label, wrong in record.get("check", {}).items():  # e.g. check/length_120
        scalars["check/" + re.sub(r"[^A-Za-z0-9]+", "_", label)] = wrong
    for tag, value in scalars.items():
        if value is not None and math.isfinite(value):
            writer.add_scalar(tag, value, record["sequences"])
    writer.flush()
