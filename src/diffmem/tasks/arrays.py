"""Your own data as a task: sequences read from an .npz file of arrays
(``diffmem train --data FILE.npz``, or ``tasks.get("npz:FILE.npz")``; docs/your-data.md).

The file holds N sequences right-padded to T steps (SPEC section 4):

    inputs   (N, T, C)  floats, finite                  -> input_size C
    targets  (N, T, K)  0 or 1: bits, a sigmoid each     -> output_size K
          or (N, T)     integers in [0, K): classes, one softmax over K outputs
    mask     (N, T)     optional, 1 where a step is scored (default: every step)
    lengths  (N,)       optional, each sequence's length, 1..T (steps past it are not scored)
    classes  ()         optional, K for class targets (default: the largest target + 1)

For example, reversing 3 tokens of 5 classes (``-`` marks a step that is not scored):

            t: 0  1  2  3  4  5  6
    inputs:    a  b  c  ^  .  .  .      one-hot tokens, then a delimiter channel
    targets:   -  -  -  -  c  b  a      classes
    mask:      0  0  0  0  1  1  1

Targets are read only where a step is scored, so padding may hold any value there (-1, say).
Every check runs when the file is opened, before a run directory exists, and a file that
fails one raises a ValueError of one line naming the file, the array and what to do.

Uncompressed files (``numpy.savez``) are memory-mapped: a batch reads its rows from disk, so
a file larger than memory trains. Compressed ones (``numpy.savez_compressed``) are read into
memory, since a zip's compressed member cannot be mapped.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
import urllib.parse
import zipfile
import zlib
from collections.abc import Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from diffmem import losses
from diffmem.tasks.base import Batch, Task

PREFIX = "npz:"  # a task spec of this form is a file of arrays: "npz:PATH?val_fraction=0.2"
ARRAYS = ("inputs", "targets", "mask", "lengths", "classes")
# The held-out sequences are drawn with this seed, not the run's: every run of a file is
# judged on the same sequences.
SPLIT_SEED = 34
VAL_BATCH = 256  # sequences per batch of the held-out set
_IN_MEMORY = itertools.count()  # tells apart the ArrayFiles of arrays given in memory
_CHUNK_BYTES = 1 << 26  # the checks read a memory-mapped file this much at a time
_SAVE = "numpy.savez(FILE, inputs=..., targets=...)"


# Reading a file.

def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of the .npz file ``path`` by name: memory-mapped where stored uncompressed
    (``numpy.savez``), read into memory where compressed or empty. Nothing is unpickled."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file; give an .npz file of arrays, as {_SAVE} "
                         "writes")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an .npz file (a zip of .npy arrays); save your arrays "
                         f"with {_SAVE}")
    arrays = {}
    try:
        with zipfile.ZipFile(path) as z, open(path, "rb") as f:
            for info in z.infolist():
                name = info.filename.removesuffix(".npy")
                try:
                    arrays[name] = _member(path, z, f, info)
                except ValueError as err:
                    raise ValueError(f"{path}: {name} is not a numeric .npy array ({err}); "
                                     f"save your arrays with {_SAVE}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:  # a damaged file
        raise ValueError(f"{path} is not a readable .npz file ({type(err).__name__}: {err}); "
                         f"write it again with {_SAVE}") from None
    return arrays


def _member(path: Path, z: zipfile.ZipFile, f, info: zipfile.ZipInfo) -> np.ndarray:
    """One member: an ``np.memmap`` at its offset in the file where stored uncompressed."""
    if info.compress_type == zipfile.ZIP_STORED:
        # The data follow the local file header (30 bytes, then the name and the extra field),
        # and begin with the .npy header.
        f.seek(info.header_offset)
        header = f.read(30)
        if header[:4] != b"PK\x03\x04":
            raise ValueError("a damaged zip entry")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        f.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is not None:
            shape, fortran, dtype = read_header(f)
            _numeric(dtype)
            if math.prod(shape) > 0:
                return np.memmap(path, dtype=dtype, mode="r", offset=f.tell(), shape=shape,
                                 order="F" if fortran else "C")
    with z.open(info) as member:
        array = np.lib.format.read_array(member, allow_pickle=False)
    _numeric(array.dtype)
    return array


def _numeric(dtype: np.dtype) -> None:
    if not (dtype == np.bool_ or np.issubdtype(dtype, np.integer)
            or np.issubdtype(dtype, np.floating)):
        raise ValueError(f"dtype {dtype}; expected numbers")


# The checks: each failure is one line naming the file, the array and what to do.

def _check_names(path: Path, arrays: dict[str, np.ndarray]) -> None:
    unknown = sorted(set(arrays) - set(ARRAYS))
    if unknown:
        raise ValueError(f"{path} has an array {unknown[0]!r} that diffmem does not read; the "
                         f"arrays are {', '.join(ARRAYS)}: rename it or leave it out")
    for name in ("inputs", "targets"):
        if name not in arrays:
            has = ", ".join(sorted(arrays)) or "none"
            raise ValueError(f"{path} has no array {name!r} (its arrays: {has}); save it with "
                             f"{_SAVE}")


def _check_shapes(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """Ranks, kinds and the agreement of N and T; returns "bits" or "classes"."""
    x, y = arrays["inputs"], arrays["targets"]
    if x.ndim != 3:
        raise ValueError(f"{path}: inputs has shape {x.shape}; expected (N, T, C): sequences, "
                         "steps and channels (one channel: inputs[..., None])")
    if y.ndim not in (2, 3):
        raise ValueError(f"{path}: targets has shape {y.shape}; expected (N, T, K) bits or "
                         "(N, T) class indices")
    if y.ndim == 2 and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{path}: targets of shape (N, T) are class indices and must be "
                         f"integers, not {y.dtype}: convert them with targets.astype(int), or "
                         "give bits as (N, T, K)")
    ranks = {"mask": 2, "lengths": 1}
    for name, rank in ranks.items():
        if name in arrays and arrays[name].ndim != rank:
            want = "(N, T)" if rank == 2 else "(N,)"
            raise ValueError(f"{path}: {name} has shape {arrays[name].shape}; expected {want}")
    if "lengths" in arrays and not np.issubdtype(arrays["lengths"].dtype, np.integer):
        raise ValueError(f"{path}: lengths has dtype {arrays['lengths'].dtype}; expected "
                         "integers: convert it with lengths.astype(int)")
    if min(x.shape) == 0:
        raise ValueError(f"{path}: inputs has shape {x.shape}; expected at least one sequence, "
                         "step and channel")
    for name in ("targets", "mask", "lengths"):
        if name not in arrays:
            continue
        for axis, what in ((0, "sequences"), (1, "steps"))[:arrays[name].ndim]:
            if arrays[name].shape[axis] != x.shape[axis]:
                raise ValueError(
                    f"{path}: inputs has {x.shape[axis]} {what} but {name} has "
                    f"{arrays[name].shape[axis]} (axis {axis} of {arrays[name].shape}); every "
                    f"array holds the same N sequences of T steps")
    if "classes" in arrays and y.ndim == 3:
        raise ValueError(f"{path}: classes is for class targets (N, T), and these targets are "
                         f"bits {y.shape}: leave classes out")
    return "bits" if y.ndim == 3 else "classes"


def _declared_classes(path: Path, arrays: dict[str, np.ndarray]) -> int | None:
    if "classes" not in arrays:
        return None
    c = np.asarray(arrays["classes"])
    if c.size != 1 or not np.issubdtype(c.dtype, np.integer) or int(c.reshape(())) < 2:
        raise ValueError(f"{path}: classes is {c.reshape(-1)[:3].tolist()}; expected one "
                         "integer K >= 2, the number of classes")
    return int(c.reshape(()))


def _check_lengths(path: Path, lengths: np.ndarray | None, T: int) -> None:
    if lengths is None:
        return
    bad = np.flatnonzero((lengths < 1) | (lengths > T))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{path}: lengths holds {int(lengths[i])} at sequence {i}; expected "
                         f"a length from 1 to T={T} (the steps of inputs)")


def _where(bad: np.ndarray, start: int) -> tuple[int, ...]:
    """The index of the first True of ``bad``, its first axis counted from ``start``."""
    at = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape)
    return (start + int(at[0]), *map(int, at[1:]))


def _scored(arrays: dict[str, np.ndarray], rows: slice | np.ndarray, T: int) -> np.ndarray:
    """The (n, T) float32 mask of ``rows``: the file's mask times (step < length)."""
    n = len(range(arrays["inputs"].shape[0])[rows]) if isinstance(rows, slice) else len(rows)
    m = np.ones((n, T), np.float32)
    if "mask" in arrays:
        m *= np.asarray(arrays["mask"][rows], np.float32)
    if "lengths" in arrays:
        m *= np.arange(T) < np.asarray(arrays["lengths"][rows])[:, None]
    return m


def _check_chunk(path: Path, arrays: dict[str, np.ndarray], lo: int, hi: int, kind: str,
                 classes: int | None) -> int:
    """The value checks of sequences lo..hi-1; returns their largest scored class (or -1)."""
    x = np.asarray(arrays["inputs"][lo:hi])
    if not np.isfinite(x).all():
        i, t, c = _where(~np.isfinite(x), lo)
        raise ValueError(f"{path}: inputs holds {x[i - lo, t, c]} at sequence {i}, step {t}, "
                         f"channel {c}; inputs must be finite: replace missing values (with 0, "
                         "say, marked in a channel of their own)")
    if "mask" in arrays:
        raw = np.asarray(arrays["mask"][lo:hi])
        bad = (raw != 0) & (raw != 1)
        if bad.any():
            i, t = _where(bad, lo)
            raise ValueError(f"{path}: mask holds {raw[i - lo, t]} at sequence {i}, step {t}; "
                             "expected 0 (not scored) or 1 (scored) at every step")
    m = _scored(arrays, slice(lo, hi), x.shape[1]) > 0
    if not m.any(axis=1).all():
        i = lo + int(np.flatnonzero(~m.any(axis=1))[0])
        raise ValueError(_nothing_scored(path, arrays, i))
    y = np.asarray(arrays["targets"][lo:hi])
    if kind == "bits":
        bad = ((y != 0) & (y != 1)) & m[..., None]
        if bad.any():
            i, t, k = _where(bad, lo)
            raise ValueError(f"{path}: targets holds {y[i - lo, t, k]} at sequence {i}, step "
                             f"{t}, channel {k}; bit targets (N, T, K) must be 0 or 1 where "
                             "scored (class indices go in an (N, T) integer array)")
        return -1
    top = np.inf if classes is None else classes
    bad = ((y < 0) | (y >= top)) & m
    if bad.any():
        i, t = _where(bad, lo)
        allowed = "0 or more" if classes is None else f"in [0, {classes}) (classes={classes})"
        raise ValueError(f"{path}: targets holds class {y[i - lo, t]} at sequence {i}, step "
                         f"{t}; a scored class must be {allowed}: fix it, or set its mask to 0")
    return int(np.max(np.where(m, y, -1)))


def _nothing_scored(path: Path, arrays: dict[str, np.ndarray], i: int) -> str:
    if "mask" in arrays and not any(np.any(arrays["mask"][lo:lo + 4096])
                                    for lo in range(0, arrays["mask"].shape[0], 4096)):
        return (f"{path}: mask is 0 at every step, so nothing would be scored; set it to 1 "
                "where the model's output counts")
    return (f"{path}: sequence {i} has no scored step (its mask is 0 at every step before its "
            "length); every sequence needs one: drop it, or fix its mask")


class ArrayFile:
    """One .npz file of sequences, checked: its arrays (memory-mapped where it can), sizes
    and kind of targets."""

    def __init__(self, path: str | os.PathLike | Mapping[str, Any]) -> None:
        if isinstance(path, Mapping):  # arrays in memory, named as in a file
            self.path = Path("<arrays>")
            arrays = {name: np.asarray(a) for name, a in path.items()}
            self.stamp: tuple = ("arrays", next(_IN_MEMORY))
        else:
            self.path = Path(path).absolute()
            arrays = read_npz(self.path)
            stat = self.path.stat()
            self.stamp = (str(self.path), stat.st_mtime_ns, stat.st_size)
        _check_names(self.path, arrays)
        self.kind = _check_shapes(self.path, arrays)  # "bits" or "classes"
        declared = _declared_classes(self.path, arrays) if self.kind == "classes" else None
        N, T, C = arrays["inputs"].shape
        _check_lengths(self.path, arrays.get("lengths"), T)
        row_bytes = sum(a[0].nbytes for a in arrays.values() if a.ndim >= 2)  # one sequence
        rows = max(1, _CHUNK_BYTES // max(1, row_bytes))
        top = max(_check_chunk(self.path, arrays, lo, min(N, lo + rows), self.kind, declared)
                  for lo in range(0, N, rows))
        if self.kind == "classes" and declared is None and top < 1:
            raise ValueError(f"{self.path}: every scored target is class 0, so there is nothing "
                             "to predict; store the number of classes as classes=K if there "
                             "are more")
        self.arrays = arrays
        self.sequences, self.steps, self.channels = N, T, C
        self.outputs = (arrays["targets"].shape[2] if self.kind == "bits" else
                        declared or top + 1)  # K

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sequences ``rows`` (any shape S) as (inputs (*S, T, C) float32, targets (*S, T, K)
        float32 or (*S, T) int32, mask (*S, T) float32); targets are 0 where not scored."""
        rows = np.asarray(rows)
        flat = rows.reshape(-1)
        x = np.asarray(self.arrays["inputs"][flat], np.float32)
        m = _scored(self.arrays, flat, self.steps)
        y = np.asarray(self.arrays["targets"][flat])
        if self.kind == "bits":
            y = np.where(m[..., None] > 0, y, 0).astype(np.float32)
        else:
            y = np.where(m > 0, y, 0).astype(np.int32)
        return tuple(a.reshape(rows.shape + a.shape[1:]) for a in (x, y, m))

    def shapes(self, batch_size: int, outputs: int) -> Batch:
        """The shapes and dtypes of a batch (``jax.ShapeDtypeStruct``)."""
        B, T = batch_size, self.steps
        target = ((B, T, outputs), jnp.float32) if self.kind == "bits" else ((B, T), jnp.int32)
        return Batch(jax.ShapeDtypeStruct((B, T, self.channels), jnp.float32),
                     jax.ShapeDtypeStruct(*target), jax.ShapeDtypeStruct((B, T), jnp.float32))

    def batch(self, rows: np.ndarray) -> Batch:
        return Batch(*(jnp.asarray(a) for a in self.gather(rows)))


class Batches(Sequence):
    """Sequences ``rows`` of ``data`` in order, in batches of at most VAL_BATCH, each read
    from the file when it is used (a held-out set larger than memory stays on disk)."""

    def __init__(self, data: ArrayFile, rows: np.ndarray, size: int = VAL_BATCH) -> None:
        self.data, self.rows, self.size = data, rows, size

    def __len__(self) -> int:
        return -(-len(self.rows) // self.size)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return self.data.batch(self.rows[i * self.size:(i + 1) * self.size])

    def __iter__(self) -> Iterator[Batch]:
        return (self[i] for i in range(len(self)))


# A task spec: "npz:PATH", with "?val_fraction=F" or "?val_data=PATH2".

def spec(path: str | os.PathLike, val_fraction: float | None = None,
         val_data: str | os.PathLike | None = None) -> str:
    """The task spec of a file (absolute paths, so that a run is found from any folder)."""
    options = {}
    if val_fraction is not None:
        options["val_fraction"] = repr(float(val_fraction))
    if val_data is not None:
        options["val_data"] = str(Path(val_data).absolute())
    query = urllib.parse.urlencode(options, safe="/:")
    return f"{PREFIX}{Path(path).absolute()}" + (f"?{query}" if query else "")


def parse_spec(text: str) -> dict[str, Any]:
    """``ArrayTask``'s arguments from a spec ``npz:PATH[?val_fraction=F][&val_data=PATH2]``."""
    path, _, query = text.removeprefix(PREFIX).partition("?")
    if not path:
        raise ValueError(f"task {text!r} names no file; write npz:FILE.npz")
    options: dict[str, Any] = {"path": path}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if name == "val_fraction":
            try:
                options[name] = float(value)
            except ValueError:
                raise ValueError(f"task {text!r}: val_fraction={value!r} must be a number "
                                 "between 0 and 1 (exclusive), e.g. 0.1") from None
        elif name == "val_data":
            options[name] = value
        else:
            raise ValueError(f"task {text!r}: unknown option {name!r}; the options are "
                             "val_fraction and val_data")
    return options


def stamp(options: dict[str, Any]) -> tuple | None:
    """What identifies the files of ``parse_spec``'s options as they are now (None: one is
    missing)."""
    out = []
    for path in (options["path"], options.get("val_data")):
        if path is not None:
            try:
                s = os.stat(path)
            except OSError:
                return None
            out.append((str(Path(path).absolute()), s.st_mtime_ns, s.st_size))
    return tuple(out)


class ArrayTask(Task):
    """Sequences of an .npz file (see this module's docstring), a held-out part of them the
    validation set.

    ``val_fraction`` of the N sequences (at least one) are held out, chosen by a permutation
    from SPLIT_SEED, the same for every run; or, with ``val_data``, every sequence of that
    second file is held out and the first file is all training. ``sample`` draws a batch's
    sequences uniformly (with replacement) from the training part (``split="val"``: the
    held-out part) with ``jax.random`` and reads their rows with ``jax.pure_callback``: a pure
    function of the key, so a resumed run sees the same batches.

    Bit targets are scored as the paper's tasks are. Class targets are scored by softmax
    cross-entropy, under the same names: ``bits`` (the cross-entropy in bits per sequence),
    ``bit_errors`` (wrong steps per sequence), ``wrong_bit_fraction`` (wrong steps / scored
    steps), with ``accuracy`` (right steps / scored steps) in the evaluation figures.

    There is no natural target, so ``target_bits`` is 0: no run reaches it, every run trains
    its whole budget and keeps the checkpoint of the lowest held-out bits.
    """

    target_bits = 0.0
    eval_sizes = ({"split": "val"},)
    generalisation_check = ()
    example_size = {"split": "val"}

    def __init__(self, path: str | os.PathLike | Mapping[str, Any], val_fraction: float = 0.1,
                 val_data: str | os.PathLike | Mapping[str, Any] | None = None) -> None:
        train = ArrayFile(path)
        if val_data is None:
            if not (isinstance(val_fraction, (int, float)) and 0 < val_fraction < 1):
                raise ValueError(f"val_fraction={val_fraction!r} must be a number between 0 and "
                                 "1 (exclusive), e.g. 0.1, the part of the sequences held out")
            held = max(1, round(train.sequences * val_fraction))
            if held >= train.sequences:
                raise ValueError(f"{train.path} has {train.sequences} sequence(s), too few to "
                                 f"hold out {val_fraction:g} of them and train on the rest; "
                                 "give more sequences, or a held-out file (--val-data)")
            order = np.random.RandomState(SPLIT_SEED).permutation(train.sequences)
            val, train_rows, val_rows = train, np.sort(order[:-held]), np.sort(order[-held:])
        else:
            same = not isinstance(val_data, Mapping) and Path(val_data).absolute() == train.path
            val = train if same else ArrayFile(val_data)
            _check_alike(train, val)
            train_rows, val_rows = np.arange(train.sequences), np.arange(val.sequences)
        self._parts = {"train": (train, train_rows), "val": (val, val_rows)}
        self.name = "arrays" if isinstance(path, Mapping) else train.path.stem
        self.kind = train.kind
        self.input_size = train.channels
        self.output_size = max(train.outputs, val.outputs)
        self._identity = (type(self), train.stamp, val.stamp, len(train_rows), len(val_rows))

    def identity(self) -> Hashable:
        return self._identity

    def split(self, name: str) -> tuple[ArrayFile, np.ndarray]:
        """The file and its rows of the split ``name``, "train" or "val"."""
        if name not in self._parts:
            raise ValueError(f"split={name!r} must be 'train' or 'val' (the held-out set)")
        return self._parts[name]

    def sample(self, key: jax.Array, batch_size: int, split: str = "train") -> Batch:
        """``batch_size`` sequences of ``split`` ("train", or "val": the held-out set), drawn
        uniformly with replacement from ``key``."""
        data, rows = self.split(split)
        picks = jax.random.randint(key, (batch_size,), 0, len(rows))  # positions in the split
        return Batch(*jax.pure_callback(
            lambda p: data.gather(rows[np.asarray(p)]), data.shapes(batch_size, self.output_size),
            picks, vmap_method="broadcast_all"))

    def validation_set(self, count: int, seed: int) -> Batches:
        """Every held-out sequence, in order (``count`` and ``seed`` are not needed)."""
        return Batches(*self.split("val"))

    def training_range(self) -> str:
        data, rows = self.split("train")
        return f"{len(rows):,} sequences of {data.path.name}"

    def parse_size(self, text: str) -> dict[str, str]:
        names = {"val": "val", "held-out": "val", "train": "train"}
        if text not in names:
            raise ValueError(f"{self.name} has no sizes, only its splits: {text!r} must be "
                             "val (the held-out set) or train")
        return {"split": names[text]}

    def describe_size(self, sizes: dict[str, Any]) -> str:
        return {"val": "held-out set", "train": "training set"}[sizes.get("split", "train")]

    # Class targets: softmax cross-entropy and accuracy (bits: the base class's scoring).

    def loss(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        if self.kind == "bits":
            return super().loss(outputs, batch)
        return jnp.mean(losses.sequence_class_cross_entropy(outputs, batch.targets, batch.mask))

    def update_metrics(self, outputs: jax.Array, batch: Batch) -> dict[str, jax.Array]:
        if self.kind == "bits":
            return super().update_metrics(outputs, batch)
        return losses.class_metrics(outputs, batch.targets, batch.mask)

    def eval_totals(self, outputs: jax.Array, batch: Batch) -> dict[str, jax.Array]:
        if self.kind == "bits":
            return super().eval_totals(outputs, batch)
        return {
            "nats": jnp.sum(losses.sequence_class_cross_entropy(outputs, batch.targets,
                                                                batch.mask)),
            "errors": jnp.sum(losses.sequence_class_errors(outputs, batch.targets, batch.mask)),
            "scored": jnp.sum(batch.mask),
            "sequences": jnp.asarray(batch.mask.shape[0], jnp.float32),
        }

    def eval_figures(self, totals: dict[str, float]) -> dict[str, Any]:
        if self.kind == "bits":
            return super().eval_figures(totals)
        n, wrong = totals["sequences"], totals["errors"] / max(totals["scored"], 1.0)
        return {"bits": totals["nats"] / losses.LN2 / n, "bit_errors": totals["errors"] / n,
                "wrong_bit_fraction": wrong, "accuracy": 1.0 - wrong, "sequences": int(n)}

    def display(self, outputs: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array]:
        if self.kind == "bits":
            return super().display(outputs, batch)
        K = outputs.shape[-1]
        shown = jax.nn.one_hot(batch.targets, K) * batch.mask[..., None]  # none where unscored
        return shown, jax.nn.softmax(outputs, axis=-1)


def _check_alike(train: ArrayFile, val: ArrayFile) -> None:
    """A held-out file must fit the model that the training file shapes."""
    if val.kind != train.kind:
        raise ValueError(f"{val.path} has {val.kind} targets and {train.path} {train.kind}; "
                         "a held-out file holds targets of the same kind")
    if train.kind == "classes" and val.outputs > train.outputs:
        raise ValueError(f"{val.path} has {val.outputs} classes and {train.path} {train.outputs}; "
                         "a held-out file holds the training file's classes (store classes=K "
                         "in both)")
    if val.channels != train.channels or (train.kind == "bits" and val.outputs != train.outputs):
        raise ValueError(
            f"{val.path} has {val.channels} input channels and {val.outputs} outputs, "
            f"{train.path} {train.channels} and {train.outputs}; a held-out file has the "
            "training file's channels")


def file_task(path: str | os.PathLike, task: Task) -> ArrayTask:
    """Every sequence of the file ``path`` as the held-out set of an ``ArrayTask`` (its
    ``validation_set``), to score a model trained on ``task``: the file must fit that
    model's inputs and outputs and be scored the same way (bits, or classes)."""
    scorer = ArrayTask(path, val_data=path)
    data = scorer.split("val")[0]
    kind = task.kind if isinstance(task, ArrayTask) else "bits"
    if scorer.kind != kind:
        raise ValueError(f"{data.path} has {scorer.kind} targets, and the model was trained "
                         f"on {kind} ({task.name}); score it on a file like its training data")
    if scorer.input_size != task.input_size:
        raise ValueError(f"{data.path}: inputs has {scorer.input_size} channels, and the model "
                         f"takes {task.input_size} ({task.name}); give a file with as many")
    if kind == "bits" and scorer.output_size != task.output_size:
        raise ValueError(f"{data.path}: targets has {scorer.output_size} channels, and the "
                         f"model has {task.output_size} outputs ({task.name}); give a file "
                         "with as many")
    if kind == "classes" and scorer.output_size > task.output_size:
        raise ValueError(f"{data.path}: targets has {scorer.output_size} classes, and the "
                         f"model has {task.output_size} ({task.name}): classes from 0 to "
                         f"{task.output_size - 1} only")
    return scorer
