"""Typed run configuration: the model, the training settings, presets, and validation.

A ``Config`` is what ``diffmem train`` resolves from its defaults, a preset and the command
line; it is saved as ``config.json`` in every run directory and inside every checkpoint, and
``Config.from_dict`` rebuilds it exactly.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any

from flax import nnx

from diffmem import models, presets, tasks

OPTIMIZERS = ("adam", "rmsprop")
# The ModelConfig switches of the DNC's refinements (Csordas & Schmidhuber 2019).
DNC_SWITCHES = ("content_masking", "deallocation", "link_sharpness")
CLIP_MODES = ("norm", "value")
NONFINITE_ACTIONS = ("rollback", "stop")
NTM_KINDS = ("ntm-lstm", "ntm-ff")  # the models with NTM heads (tape_bias, ...)
DNC_KINDS = ("dnc", "sdnc")  # the models with the DNC's interface (its refinements, link_topk)
# Fields of some kinds of model only, and those kinds: on another kind a value other than the
# default would be ignored, so it is refused.
ONLY_FOR = {"memory_init": NTM_KINDS, "tape_bias": NTM_KINDS, "tape_read_heads": NTM_KINDS,
            "read_after_write": NTM_KINDS, **{switch: DNC_KINDS for switch in DNC_SWITCHES},
            "link_topk": DNC_KINDS, "read_topk": ("sam", "sdnc")}
# Fields removed because no preset used them and no user feature needed them, with the value
# they had to have: runs and checkpoints written before still load. They were last in commit
# 05b86b3 (diffmem 0.19.1).
RETIRED = {"model": {"gate_bias": 0.0}, "train": {"lr_warmup": 0, "curriculum": 0}}


class ConfigError(ValueError):
    """A configuration value a user gave is invalid; the message says which and what to do."""


@dataclass(frozen=True)
class ModelConfig:
    """The network. Defaults are the paper's LSTM-controller NTM for the copy task (Table 2)."""

    kind: str = "ntm-lstm"  # a name in diffmem.models.names(): ntm-lstm, ntm-ff, lstm, ...
    controller_size: int = 100  # H; the paper's copy NTMs use 100 units (lstm: units per layer)
    controller_layers: int = 1  # the paper's NTMs have one controller layer (but priority sort)
    # The fields below are the memory's; models without one (the LSTM baseline) ignore them.
    read_heads: int = 1  # R; copy needs one read head and one write head
    write_heads: int = 1  # W
    memory_rows: int = 128  # N; 128 in every experiment of the paper
    memory_width: int = 20  # M; 20 in every experiment of the paper
    shift_radius: int = 1  # K; the paper allows shifts of -1, 0, +1
    # Collier & Beel's: never slower on copy (docs/defaults.md), no extra parameters
    memory_init: str = "constant"
    clip: float = 20.0  # controller outputs clipped to +-20 before the heads (Collier & Beel)
    # NTM write heads that start as a tape: each write head's interpolation-gate logit starts
    # at -tape_bias and its +1 shift logit at +tape_bias, so from its focused start on row 0
    # it moves one row a step (0: off; diffmem.ntm.NTMCell).
    tape_bias: float = 0.0
    # The first so many NTM read heads start as a tape too (with tape_bias), moving with the
    # write head row by row.
    tape_read_heads: int = 0
    # NTM order within a step: False reads the memory as it stood before this step's write
    # (SPEC, Collier & Beel); True writes first, so a feed-forward controller gets back at
    # the next step what it wrote (diffmem.ntm.NTMCell).
    read_after_write: bool = False
    # Memory models: the gradient flowing back into the recurrent state is clipped elementwise
    # to this bound at every step (None: off). The forward pass is unchanged; it keeps a
    # backward pass that grows step after step finite (diffmem.scan.scan_steps).
    state_grad_clip: float | None = None
    # The DNC's refinements by Csordas & Schmidhuber (2019), off in the DNC paper; the other
    # models ignore them. See diffmem.dnc.DNCCell.
    content_masking: bool = False
    deallocation: bool = False
    link_sharpness: bool = False
    # The DNC's sparse link matrix (Graves et al. 2016, Methods): K entries per row of the
    # link matrix and of its transpose, O(N K) a step instead of O(N^2); None: dense (the
    # SDNC's link is always sparse: None is its paper's 8).
    link_topk: int | None = None
    # Sparse access memory and the sparse DNC (Rae et al. 2016): the rows each content lookup
    # reads, K (and for the SDNC, the least used rows its allocation ranks).
    read_topk: int = 4
    # Rows of the memory after training: the final evaluation, `diffmem eval`, figures and the
    # demo (None: memory_rows). Only for a model whose parameters do not depend on the number
    # of rows (the DNC, SAM): the DNC trained on a small memory must reuse the rows it has
    # read, which is what it needs on sequences longer than it was trained on (docs/dnc.md).
    eval_memory_rows: int | None = None


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Defaults: the fastest setting we measured on a 2-core CPU (README)."""

    batch_size: int = 32  # the paper uses 1; 16-64 train ~1.8x the sequences/s (docs/throughput.md)
    sequences: int = 500_000  # budget in sequences; the run stops at this or ``minutes``
    minutes: float | None = 10.0  # budget: total minutes for the run, compilation included
    optimizer: str = "adam"  # adam or rmsprop (Graves 2013 form: centred, momentum 0.9)
    lr: float = 3e-3  # fastest stable rate we measured at batch 32 (1e-3 took ~2x longer)
    # Sequences per halving of lr (None: constant), down to lr_min. Off: halving slowed copy's
    # last stretch to the target, which needs a high rate.
    lr_half_life: int | None = None
    lr_min: float = 1e-4
    # Multiply the rate by this (down to lr_min) whenever the mean training loss of an
    # eval_every stretch has not improved on the best for lr_plateau_patience stretches
    # (optax.contrib.reduce_on_plateau); None: off.
    lr_plateau_factor: float | None = None
    lr_plateau_patience: int = 2
    grad_clip: float = 10.0  # Collier & Beel clip the global norm to 50; every run here used 10
    grad_clip_mode: str = "norm"  # "norm": by global norm; "value": elementwise (the paper)
    seed: int = 0  # fixes parameter initialisation and every training batch
    eval_every: int = 4_000  # sequences between validation / log points
    val_size: int = 512  # sequences in the fixed, seeded validation set
    eval_count: int = 256  # sequences per size in the final generalisation evaluation
    # Sequences per size of the task's generalisation check (Task.generalisation_check),
    # validated at every log point beside the training distribution: the run keeps the best
    # checkpoint by it and does not stop early before it passes. 0: no check (the best
    # checkpoint is then the one with the lowest validation bits).
    generalisation_val_size: int = 64
    # Stop once validation bits < the task's target and the generalisation check passes...
    early_stop: bool = True
    patience: int = 2  # ... at this many consecutive validation points
    tensorboard: bool = True  # write TensorBoard event files to RUN_DIR/tensorboard
    # After a non-finite loss or gradient (the update is always skipped): "rollback" returns to
    # the last checkpoint and goes on with fresh batches, at most max_rollbacks times; "stop"
    # ends the run there.
    on_nonfinite: str = "rollback"
    max_rollbacks: int = 3
    # Start again from fresh initial weights (drawn from the seed and the restart's number),
    # with a fresh optimiser and rate schedule, at the first log point at least restart_after
    # sequences after the last start where validation is still above restart_above bits per
    # sequence and the target was never met: a plateau that some initialisations never leave
    # (0: off). Batches go on where they were.
    restart_after: int = 0
    restart_above: float = 0.0
    # At a log point whose validation is more than collapse_above bits per sequence above the
    # best log point's, go back to the best point's parameters, with the plateau rule's rate
    # (lr_plateau_factor, which must be on) cut at once; the optimiser's moments and the
    # batches go on. For a run that learns and then falls apart at its rate. None: off.
    collapse_above: float | None = None


# The training fields a resumed run may change (`diffmem train --resume RUN_DIR --set ...`):
# its budgets, when to stop early, TensorBoard logging and what to do after a non-finite step.
# Every other field shapes the updates, so changing it would make the run another one.
RESUMABLE_TRAIN_FIELDS = ("sequences", "minutes", "early_stop", "patience", "tensorboard",
                          "on_nonfinite", "max_rollbacks")


@dataclass(frozen=True)
class Config:
    task: str = "copy"
    preset: str = "default"
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        data = dict(data)
        _reject_unknown(cls, data, "config")
        model = _drop_retired(dict(data.pop("model", {})), "model")
        train = _drop_retired(dict(data.pop("train", {})), "train")
        _reject_unknown(ModelConfig, model, "model")
        _reject_unknown(TrainConfig, train, "train")
        return cls(model=ModelConfig(**model), train=TrainConfig(**train), **data)

    def replace(self, model: dict | None = None, train: dict | None = None, **top) -> Config:
        """A copy with some fields changed, e.g. ``config.replace(train={"lr": 3e-4})``."""
        return dataclasses.replace(
            self,
            model=dataclasses.replace(self.model, **(model or {})),
            train=dataclasses.replace(self.train, **(train or {})),
            **top,
        )


def _drop_retired(data: dict[str, Any], where: str) -> dict[str, Any]:
    """``data`` without RETIRED fields, which must hold the only value they could have."""
    for name, value in RETIRED[where].items():
        if name in data and data.pop(name) != value:
            raise ConfigError(
                f"{where}.{name} was removed from diffmem 0.20 (no preset used it); this run "
                f"set it to something other than {value!r}: train or evaluate it with diffmem "
                "0.19 (commit 05b86b3)")
    return data


def _reject_unknown(cls: type, data: dict[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown {where} field(s) {unknown}; the known fields are {sorted(known)}"
        )


def default_model(task: str) -> str:
    """The model kind a task trains with by default (presets.DEFAULT_MODELS)."""
    return presets.DEFAULT_MODELS.get(task, ModelConfig.kind)


def preset_names() -> list[str]:
    return list(presets.PRESET_NAMES)


def resolve(task: str, model: str | None = None, preset: str = "default") -> Config:
    """The configuration for a task, model kind (None: the task's default model, see
    ``default_model``) and preset, before command-line overrides: the dataclass defaults
    changed by the preset's row in ``diffmem.presets.PRESETS``."""
    _check_task(task)
    model = default_model(task) if model is None else model
    _check_model(model)
    if preset not in presets.PRESET_NAMES:
        raise ConfigError(
            f"unknown preset {preset!r}; the presets are: {', '.join(presets.PRESET_NAMES)}"
        )
    row = _row(task, model, preset)
    config = Config(task=task, preset=preset, model=ModelConfig(kind=model, **row.model),
                    train=TrainConfig(**row.train))
    return validate(config)


def _row(task: str, model: str, preset: str) -> presets.Preset:
    row = presets.PRESETS.get((task, model, preset))
    if row is None and preset == "paper":
        if not any(t == task for t, _, _ in presets.PRESETS):
            raise ConfigError(f"there is no paper preset for task {task!r}: it is not in the paper")
        raise ConfigError(f"there is no paper preset for model {model!r}: it is not in the paper")
    if row is None:  # a task registered at run time, or a model kind without rows (SAM, SDNC)
        row = presets.OTHER_TASKS.get(model) or presets.Preset({}, {}, "The defaults.")
    return row


def describe(config: Config) -> dict[str, Any]:
    """What ``diffmem config`` prints: the configuration, why its preset sets what it does,
    and its parameter count beside the paper's (None where the architecture is not the
    paper's)."""
    config = validate(config)
    model = nnx.eval_shape(lambda: models.build_model(config))  # shapes only, no arrays
    return {
        "config": config.to_dict(),
        "preset_reason": _row(config.task, config.model.kind, config.preset).reason,
        "parameters": models.count_parameters(model),
        "paper_parameters": paper_parameters(config),
    }


def paper_parameters(config: Config) -> int | None:
    """The paper's parameter count for this configuration's task and model, if it has the
    paper's architecture (heads, controller size and layers, 128 x 20 memory, shifts -1..1;
    for the LSTM baseline, its size and layers)."""
    m = config.model
    if (config.task, m.kind) not in presets.PAPER_MODELS:
        return None
    reference = resolve(config.task, m.kind, "paper").model
    fields = ["controller_size", "controller_layers"]
    if models.get(m.kind).has_memory:
        fields += ["read_heads", "write_heads", "memory_rows", "memory_width", "shift_radius"]
    same = all(getattr(m, f) == getattr(reference, f) for f in fields)
    return presets.PAPER_MODELS[(config.task, m.kind)]["parameters"] if same else None


def capacity_warnings(config: Config, sizes: list[dict[str, Any]] | None = None) -> list[str]:
    """Warnings for sizes (None: the training range) whose sequences ask the model to store
    more vectors than its memory has rows. It can still run; it cannot get them all right."""
    if not models.get(config.model.kind).has_memory:
        return []
    task, rows, field = tasks.get(config.task), config.model.memory_rows, "memory_rows"
    if sizes is not None and config.model.eval_memory_rows is not None:
        rows, field = config.model.eval_memory_rows, "eval_memory_rows"
    warnings = []
    for size in [None] if sizes is None else sizes:
        need = task.memory_needed(size)
        what = f"must store {need} vectors"
        if need is not None and config.model.kind == "sam":
            # SAM erases its least recently used row at every step: what it wrote is lost once
            # a sequence's steps outnumber the rows.
            need = task.max_steps(**(size or {}))
            what = f"erases a row at each of its {need} steps"
        if need is not None and need > rows:
            where = (task.describe_size(size) if size else
                     f"training on {task.training_range()}")
            warnings.append(
                f"{where}: the model {what}, more than its memory's {rows} rows "
                f"(model.{field}), so expect errors; use a larger memory or shorter sequences"
            )
    return warnings


def validate(config: Config) -> Config:
    """Check every field before any work starts; raise ConfigError naming the first bad one.

    The model's own arguments (sizes, shifts, tapes, the initial memory) are checked by its
    constructor, run here on shapes alone; this function checks the rest."""
    _check_task(config.task)
    _check_model(config.model.kind)
    for section in ("model", "train"):
        _check_types(section, getattr(config, section))
    _check_train(config.train)
    _check_model_fields(config.model)
    try:
        nnx.eval_shape(lambda: models.build_model(config))
    except ValueError as err:  # "NAME=VALUE ..." names the argument, which is model.NAME
        text = str(err)
        raise ConfigError(f"model.{text}" if re.match(r"\w+=", text) else text) from None
    return config


def _check_types(section: str, values: Any) -> None:
    """Every field of ``values`` (a ModelConfig or TrainConfig) is of its declared type."""
    for name, declared in typing.get_type_hints(type(values)).items():
        value = getattr(values, name)
        options = typing.get_args(declared) or (declared,)
        if value is None and type(None) in options:
            continue
        kind = next(t for t in options if t is not type(None))
        ok = (isinstance(value, bool) if kind is bool else
              isinstance(value, kind) and not isinstance(value, bool) if kind is int else
              isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
              else isinstance(value, kind))
        if not ok:
            what = {bool: "true or false", int: "an integer", float: "a number"}.get(
                kind, f"a {kind.__name__}")
            none = ", or none" if type(None) in options else ""
            raise ConfigError(f"{section}.{name}={value!r} must be {what}{none}")


def _check_train(t: TrainConfig) -> None:
    for name, choices in (("optimizer", OPTIMIZERS), ("grad_clip_mode", CLIP_MODES),
                          ("on_nonfinite", NONFINITE_ACTIONS)):
        if getattr(t, name) not in choices:
            raise ConfigError(f"unknown {name} {getattr(t, name)!r}; choose one of: "
                              f"{', '.join(choices)}")
    for name in ("batch_size", "sequences", "eval_every", "val_size", "eval_count", "patience",
                 "lr_plateau_patience", "lr_half_life"):
        _positive_int(f"train.{name}", getattr(t, name))
    for name in ("seed", "max_rollbacks", "generalisation_val_size", "restart_after"):
        if getattr(t, name) < 0:
            raise ConfigError(f"train.{name}={getattr(t, name)!r} must be a non-negative integer")
    for name in ("lr", "grad_clip", "lr_min", "minutes"):
        _positive_float(f"train.{name}", getattr(t, name))
    if t.lr_plateau_factor is not None and not 0 < t.lr_plateau_factor < 1:
        raise ConfigError(f"train.lr_plateau_factor={t.lr_plateau_factor!r} must be a number "
                          "between 0 and 1 (exclusive), e.g. 0.5, or none to keep the rate")
    if t.restart_after and not (math.isfinite(t.restart_above) and t.restart_above > 0):
        raise ConfigError(
            f"train.restart_above={t.restart_above!r} must be a number of bits per sequence "
            f"above 0 when train.restart_after={t.restart_after} is set: the level a run "
            "still above it is restarted from, e.g. 100")
    if t.collapse_above is not None and not (
            math.isfinite(t.collapse_above) and t.collapse_above > 0):
        raise ConfigError(
            f"train.collapse_above={t.collapse_above!r} must be a number of bits per sequence "
            "above 0, how far validation may rise above its best before the run goes back "
            "to the best model (e.g. 10), or none for off")
    if t.collapse_above is not None and t.lr_plateau_factor is None:
        raise ConfigError(
            f"train.collapse_above={t.collapse_above!r} cuts the rate by "
            "train.lr_plateau_factor when it goes back to the best model, and that is none: "
            "set it too (e.g. train.lr_plateau_factor=0.5), or set collapse_above to none")


def _check_model_fields(m: ModelConfig) -> None:
    """The fields that say which parts a kind of model has; the rest is the constructor's."""
    kind = models.get(m.kind)
    for name, kinds in ONLY_FOR.items():
        default = getattr(ModelConfig, name)
        if m.kind not in kinds and getattr(m, name) != default:
            raise ConfigError(f"model.{name}={getattr(m, name)!r} is a setting of the "
                              f"{', '.join(kinds)} only; the {m.kind} has no such part: leave "
                              f"it {str(default).lower()}")
    if m.state_grad_clip is not None and not kind.has_memory:
        raise ConfigError(f"model.state_grad_clip={m.state_grad_clip!r} clips the gradient "
                          f"through a memory model's recurrent state; the {m.kind} has "
                          "none: set it to none")
    if m.kind in ("dnc", "sam", "sdnc") and m.write_heads != 1:
        raise ConfigError(f"model.write_heads={m.write_heads!r}: the {m.kind.upper()} has one "
                          "write head; leave it at 1")
    if m.eval_memory_rows is not None:
        _positive_int("model.eval_memory_rows", m.eval_memory_rows)
        if not kind.resizable_memory:
            raise ConfigError(
                f"model.eval_memory_rows={m.eval_memory_rows} needs a model whose parameters do "
                f"not depend on the number of memory rows, such as the DNC; the {m.kind} is "
                f"evaluated on the memory it was trained with: set it to none")
        if m.link_topk is not None and m.link_topk > m.eval_memory_rows:
            raise ConfigError(
                f"model.link_topk={m.link_topk!r} is more than model.eval_memory_rows="
                f"{m.eval_memory_rows}, the rows of the memory it is evaluated on: lower "
                "link_topk or raise eval_memory_rows")
    if m.kind in ("sam", "sdnc"):
        _positive_int("model.read_topk", m.read_topk)
        _within_rows(m, "read_topk", m.read_topk, "a read takes K distinct rows")
    if m.kind == "sdnc":  # unset, its K_L is the paper's 8, which the rows must hold too
        link_topk = models.SDNC_LINK_TOPK if m.link_topk is None else m.link_topk
        _positive_int("model.link_topk", link_topk)
        _within_rows(m, "link_topk", link_topk, "a row keeps K_L distinct links")


def _within_rows(m: ModelConfig, field: str, k: int, why: str) -> None:
    """Refuse ``model.field`` = ``k`` if it is more than the training or evaluation rows."""
    for name in ("memory_rows", "eval_memory_rows"):
        rows = getattr(m, name)
        if rows is not None and k > rows:
            raise ConfigError(f"model.{field}={k!r} is more than model.{name}={rows}: {why}; "
                              f"lower {field} or raise {name}")


def _check_task(task: Any) -> None:
    """A registered task name or a task spec that builds (``diffmem.tasks.get``): a spec's
    module is imported, a file of arrays read and checked, once."""
    if not isinstance(task, str):
        raise ConfigError(f"task={task!r} must be a task name or spec, e.g. copy")
    try:
        tasks.get(task)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _check_model(kind: str) -> None:
    if kind not in models.names():
        raise ConfigError(f"unknown model {kind!r}; the models are: {', '.join(models.names())}")


def _positive_int(name: str, value: Any) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer")


def _positive_float(name: str, value: Any) -> None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}={value!r} must be a positive, finite number")
