"""Checkpoints: tensors in one safetensors file, settings as JSON in its header. No pickle.

A checkpoint holds the model's variables (``model/<path>``), optionally the optimiser state
(``optimizer/<path>``), and a JSON header with the format version, the run's configuration and
its counters. It is written with ``diffmem.rundir.atomic_write`` (a temporary file, then a
rename), so a crash or interrupt leaves either the old checkpoint or the new one, never half of
one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as save_bytes

from diffmem.rundir import atomic_write

FORMAT = "diffmem-checkpoint"
VERSION = 1
FILENAME = "checkpoint.safetensors"  # the last log point's: what a resumed run goes on from
BEST = "best.safetensors"  # the best log point's model: what eval, load and the demo use


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not fit the model; names the file."""


def _flatten_state(prefix: str, state: nnx.State) -> dict[str, np.ndarray]:
    return {
        f"{prefix}/" + "/".join(str(p) for p in path): np.asarray(var[...])
        for path, var in nnx.to_flat_state(state)
    }


def _flatten_tree(prefix: str, tree: Any) -> dict[str, np.ndarray]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {f"{prefix}/{jax.tree_util.keystr(path)}": np.asarray(leaf) for path, leaf in leaves}


def save(path: str | os.PathLike, model_state: nnx.State, meta: dict[str, Any],
         opt_state: Any = None, extra: dict[str, Any] | None = None) -> Path:
    """Atomically write ``model_state`` (and ``opt_state``) with the JSON-able ``meta``.

    ``extra`` maps more prefixes to pytrees to store beside them (the training loop keeps its
    rollback point there)."""
    path = Path(path)
    tensors = _flatten_state("model", model_state)
    if opt_state is not None:
        tensors.update(_flatten_tree("optimizer", opt_state))
    for prefix, tree in (extra or {}).items():
        tensors.update(_flatten_tree(prefix, tree))
    header = {"format": FORMAT, "version": VERSION, **meta}
    return atomic_write(path, save_bytes(tensors, metadata={"diffmem": json.dumps(header)}))


def read(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load a checkpoint's tensors and header, checking that it is a diffmem checkpoint."""
    return _read(path, with_tensors=True)


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's header (configuration, counters, ...) without reading its tensors,
    checked as ``read`` checks it."""
    return _read(path, with_tensors=False)[1]


def _read(path: str | os.PathLike, with_tensors: bool
          ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: the file does not exist")
    try:
        with safe_open(path, framework="numpy") as f:
            raw = (f.metadata() or {}).get("diffmem")
            tensors = {name: f.get_tensor(name) for name in f.keys()} if with_tensors else {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"cannot read checkpoint {path}: the file is truncated or corrupt ({err}); "
            "use an earlier copy or retrain"
        ) from None
    try:
        header = json.loads(raw) if raw is not None else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a diffmem checkpoint")
    if header.get("version") != VERSION:
        raise CheckpointError(
            f"{path} is a diffmem checkpoint of format version {header.get('version')!r}; this "
            f"diffmem reads version {VERSION}. Use the diffmem release that wrote it"
        )
    missing = [k for k in ("config", "step", "counters") if k not in header]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks the header entries {missing}")
    return tensors, header


def restore_state(path: Path, template: nnx.State, tensors: dict[str, np.ndarray]) -> nnx.State:
    """Fill a model state shaped like ``template`` with the checkpoint's ``model/`` tensors."""
    flat = []
    for key_path, var in nnx.to_flat_state(template):
        name = "model/" + "/".join(str(p) for p in key_path)
        flat.append((key_path, var.replace(_fitting(path, name, tensors, var[...]))))
    _no_extra(path, "model/", tensors, {n for n in _flatten_state("model", template)})
    return nnx.from_flat_state(flat)


def restore_tree(path: Path, template: Any, tensors: dict[str, np.ndarray], prefix: str) -> Any:
    """Fill a pytree shaped like ``template`` (an optimiser state) from ``prefix/`` tensors."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    names = [f"{prefix}/{jax.tree_util.keystr(p)}" for p, _ in leaves]
    values = [_fitting(path, n, tensors, leaf) for n, (_, leaf) in zip(names, leaves)]
    _no_extra(path, f"{prefix}/", tensors, set(names))
    return jax.tree_util.tree_unflatten(treedef, values)


def _fitting(path: Path, name: str, tensors: dict[str, np.ndarray], like: Any) -> jax.Array:
    if name not in tensors:
        raise CheckpointError(
            f"checkpoint {path} has no tensor {name!r}: it was written for a different model"
        )
    value = tensors[name]
    like = np.asarray(like)
    if value.shape != like.shape or value.dtype != like.dtype:
        raise CheckpointError(
            f"checkpoint {path}: tensor {name!r} is {value.dtype}{list(value.shape)}, the model "
            f"expects {like.dtype}{list(like.shape)}; it was written for a different model"
        )
    return jax.numpy.asarray(value)


def _no_extra(path: Path, prefix: str, tensors: dict[str, np.ndarray], expected: set[str]) -> None:
    extra = sorted(n for n in tensors if n.startswith(prefix) and n not in expected)
    if extra:
        raise CheckpointError(
            f"checkpoint {path} has tensors the model lacks ({extra[:3]}...): it was written "
            "for a different model"
        )
