"""Typed run configuration: the model, the training settings, presets, and validation.

A ``Config`` is what ``diffmem train`` resolves from its defaults, a preset and the command
line; it is saved as ``config.json`` in every run directory and inside every checkpoint, and
``Config.from_dict`` rebuilds it exactly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from diffmem import tasks
from diffmem.ntm import MEMORY_INITS

MODELS = ("ntm-lstm", "ntm-ff", "lstm")  # NTM with LSTM / feed-forward controller; LSTM baseline
OPTIMIZERS = ("adam", "rmsprop")
CLIP_MODES = ("norm", "value")
NONFINITE_ACTIONS = ("rollback", "stop")


class ConfigError(ValueError):
    """A configuration value a user gave is invalid; the message says which and what to do."""


@dataclass(frozen=True)
class ModelConfig:
    """The network. Defaults are the paper's LSTM-controller NTM for the copy task (Table 2)."""

    kind: str = "ntm-lstm"  # ntm-lstm, ntm-ff (LSTM / feed-forward controller) or lstm
    controller_size: int = 100  # H; the paper's copy NTMs use 100 units (lstm: units per layer)
    controller_layers: int = 1  # the paper's NTMs have one controller layer (but priority sort)
    # The fields below are the NTM's; the LSTM baseline ignores them.
    read_heads: int = 1  # R; copy needs one read head and one write head
    write_heads: int = 1  # W
    memory_rows: int = 128  # N; 128 in every experiment of the paper
    memory_width: int = 20  # M; 20 in every experiment of the paper
    shift_radius: int = 1  # K; the paper allows shifts of -1, 0, +1
    memory_init: str = "constant"  # Collier & Beel's scheme (README: the comparison)
    clip: float = 20.0  # controller outputs clipped to +-20 before the heads (Collier & Beel)


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Defaults: the fastest setting we measured on a 2-core CPU (README)."""

    batch_size: int = 32  # the paper uses 1; batches of 16-64 train ~1.8x the sequences/s (bench)
    sequences: int = 500_000  # budget in sequences; the run stops at this or ``minutes``
    minutes: float | None = 10.0  # budget: total minutes for the run, compilation included
    optimizer: str = "adam"  # adam or rmsprop (Graves 2013 form: centred, momentum 0.9)
    lr: float = 3e-3  # fastest stable rate we measured at batch 32 (1e-3 took ~2x longer)
    lr_half_life: int | None = None  # sequences per halving of lr (None: constant) ...
    lr_min: float = 1e-4  # ... down to this. Off by default: in our copy runs, halving every
    # 15,000 sequences slowed the last stretch to the target, which needs a high rate
    # Multiply the rate by this (down to lr_min) whenever the mean training loss of an
    # eval_every stretch has not improved on the best for lr_plateau_patience stretches
    # (optax.contrib.reduce_on_plateau); None: off.
    lr_plateau_factor: float | None = None
    lr_plateau_patience: int = 2
    grad_clip: float = 10.0  # clip by global norm (Collier & Beel: 50; our measured runs: 10)
    grad_clip_mode: str = "norm"  # "norm": by global norm; "value": elementwise (the paper)
    seed: int = 0  # fixes parameter initialisation and every training batch
    eval_every: int = 4_000  # sequences between validation / log points
    val_size: int = 512  # sequences in the fixed, seeded validation set
    eval_count: int = 256  # sequences per size in the final generalisation evaluation
    early_stop: bool = True  # stop once validation bits < the task's target
    patience: int = 2  # ... at this many consecutive validation points
    tensorboard: bool = True  # write TensorBoard event files to RUN_DIR/tensorboard
    # After a non-finite loss or gradient (the update is always skipped): "rollback" returns to
    # the last checkpoint and goes on with fresh batches, at most max_rollbacks times; "stop"
    # ends the run there.
    on_nonfinite: str = "rollback"
    max_rollbacks: int = 3


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
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        data = dict(data)
        _reject_unknown(cls, data, "config")
        model = data.pop("model", {})
        train = data.pop("train", {})
        _reject_unknown(ModelConfig, model, "model")
        _reject_unknown(TrainConfig, train, "train")
        return cls(model=ModelConfig(**model), train=TrainConfig(**train), **data)

    def replace(self, model: dict | None = None, train: dict | None = None, **top) -> "Config":
        """A copy with some fields changed, e.g. ``config.replace(train={"lr": 3e-4})``."""
        return dataclasses.replace(
            self,
            model=dataclasses.replace(self.model, **(model or {})),
            train=dataclasses.replace(self.train, **(train or {})),
            **top,
        )


def _reject_unknown(cls: type, data: dict[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown {where} field(s) {unknown}; the known fields are {sorted(known)}"
        )


# The paper's architectures (Graves et al. 2014, Tables 1-3; SPEC section 1), which every preset
# uses: the NTMs' heads (as many read heads as write heads) and controller, the LSTM baseline's
# layers. "parameters" is the paper's count, printed beside ours.
PAPER_MODELS: dict[tuple[str, str], dict[str, Any]] = {
    ("copy", "ntm-ff"): dict(heads=1, size=100, layers=1, lr=1e-4, parameters=17_162),
    ("copy", "ntm-lstm"): dict(heads=1, size=100, layers=1, lr=1e-4, parameters=67_561),
    ("copy", "lstm"): dict(size=256, layers=3, lr=3e-5, parameters=1_352_969),
    ("repeat-copy", "ntm-ff"): dict(heads=1, size=100, layers=1, lr=1e-4, parameters=16_712),
    ("repeat-copy", "ntm-lstm"): dict(heads=1, size=100, layers=1, lr=1e-4, parameters=66_111),
    ("repeat-copy", "lstm"): dict(size=512, layers=3, lr=3e-5, parameters=5_312_007),
    ("associative-recall", "ntm-ff"): dict(heads=4, size=256, layers=1, lr=1e-4,
                                           parameters=146_845),
    ("associative-recall", "ntm-lstm"): dict(heads=1, size=100, layers=1, lr=1e-4,
                                             parameters=70_330),
    ("associative-recall", "lstm"): dict(size=256, layers=3, lr=1e-4, parameters=1_344_518),
    ("dynamic-ngrams", "ntm-ff"): dict(heads=1, size=100, layers=1, lr=3e-5, parameters=14_656),
    ("dynamic-ngrams", "ntm-lstm"): dict(heads=1, size=100, layers=1, lr=3e-5,
                                         parameters=61_749),
    ("dynamic-ngrams", "lstm"): dict(size=128, layers=3, lr=1e-4, parameters=331_905),
    ("priority-sort", "ntm-ff"): dict(heads=8, size=512, layers=1, lr=3e-5, parameters=508_305),
    ("priority-sort", "ntm-lstm"): dict(heads=5, size=100, layers=2, lr=3e-5,
                                        parameters=269_038),
    ("priority-sort", "lstm"): dict(size=128, layers=3, lr=3e-5, parameters=384_424),
}

# Presets, on top of the architecture above.
# "default": what trains fastest here (README, "Defaults and the paper"): batches of 32, Adam,
#   clipping by global norm, and a constant initial memory (Collier & Beel); but the paper's
#   optimiser, batch size, rate and clipping for the NTMs in _PAPER_TRAINING_BY_DEFAULT, from
#   the initial memory named there.
# "paper": the paper's training (Graves et al. 2014; SPEC section 1): RMSProp with momentum 0.9
#   at the paper's per-task rate, one sequence per update, gradients clipped elementwise to
#   +-10, and a learned initial memory ("learned bias values").
_PAPER_TRAIN = dict(optimizer="rmsprop", batch_size=1, grad_clip=10.0, grad_clip_mode="value",
                    lr_half_life=None)
# Default training settings that depend on the task or the model (README, "Defaults and the
# paper").
_TASK_TRAIN = {
    "dynamic-ngrams": dict(val_size=1000),  # SPEC: a fixed 1,000-sequence validation set
    # The paper's training (below) needed 20 minutes on one core for repeat copy, and more than
    # 22 for the LSTM-controller NTM on associative recall: 10 minutes is too short.
    "repeat-copy": dict(minutes=30.0),
    "associative-recall": dict(minutes=30.0),
}
_MODEL_TRAIN = {"lstm": dict(lr=1e-3)}  # a conventional rate for deep LSTMs; 3e-3 not tried
_TASK_MODEL_TRAIN = {
    # At 3e-3 this 8-head model hit a non-finite gradient at update 1,243 (results/gpu/).
    ("priority-sort", "ntm-ff"): dict(lr=1e-3),
}
# NTMs that train with the paper's settings by default: with batches of 32 and Adam at 3e-3 the
# LSTM-controller NTM made little progress on these tasks in 10-15 minutes, while the paper's
# settings learned repeat copy (LSTM controller) and associative recall (feed-forward
# controller, and the LSTM controller down to 1.1 bits). For the feed-forward NTM on
# associative recall, batches of 8 with Adam at 5e-4, with or without halving the rate on a
# stalled loss, did no better over seeds (README, "Defaults and the paper";
# results/seeds/trials/). The value is the initial memory: the paper's learned one, but
# Collier & Beel's constant one for the feed-forward NTM on associative recall, with which 10
# of 10 seeds reached the target in 30 minutes, against 6 of 9 (0.3) and 0 of 2 (0.4) from the
# learned one (README, "Seed stability").
_PAPER_TRAINING_BY_DEFAULT = {
    ("repeat-copy", "ntm-lstm"): "learned",
    ("associative-recall", "ntm-lstm"): "learned",
    ("associative-recall", "ntm-ff"): "constant",
}


# The model `diffmem train TASK` uses when none is named: the LSTM-controller NTM, except on
# associative recall, where the paper found the feed-forward controller best, and where ours
# reached the target in 2.7 minutes (the paper preset) while the LSTM controller stalled at 1.1
# bits after 22 (README results table); by default it reached it with 10 of 10 seeds, in 1 to
# 18 minutes (README, "Seed stability").
DEFAULT_MODELS: dict[str, str] = {"associative-recall": "ntm-ff"}


def default_model(task: str) -> str:
    """The model kind a task trains with by default."""
    return DEFAULT_MODELS.get(task, "ntm-lstm")


def preset_names() -> list[str]:
    return ["default", "paper"]


def resolve(task: str, model: str | None = None, preset: str = "default") -> Config:
    """The configuration for a task, model kind (None: the task's default model, see
    ``default_model``) and preset, before command-line overrides."""
    if task not in tasks.names():
        raise ConfigError(f"unknown task {task!r}; the tasks are: {', '.join(tasks.names())}")
    model = default_model(task) if model is None else model
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}; the models are: {', '.join(MODELS)}")
    if preset not in preset_names():
        raise ConfigError(
            f"unknown preset {preset!r}; the presets are: {', '.join(preset_names())}"
        )
    # A task registered by a user has no paper setting: it starts from the dataclass defaults.
    paper = PAPER_MODELS.get((task, model), {})
    arch: dict[str, Any] = dict(kind=model)
    if paper:
        arch.update(controller_size=paper["size"], controller_layers=paper["layers"])
    if "heads" in paper:
        arch.update(read_heads=paper["heads"], write_heads=paper["heads"])
    train = {**_TASK_TRAIN.get(task, {}), **_MODEL_TRAIN.get(model, {}),
             **_TASK_MODEL_TRAIN.get((task, model), {})}
    if preset == "paper" and not paper:
        raise ConfigError(f"there is no paper preset for task {task!r}: it is not in the paper")
    if preset == "paper" or (task, model) in _PAPER_TRAINING_BY_DEFAULT:
        train.update(_PAPER_TRAIN, lr=paper["lr"])
        if model != "lstm":
            arch["memory_init"] = ("learned" if preset == "paper"
                                   else _PAPER_TRAINING_BY_DEFAULT[(task, model)])
    config = Config(task=task, preset=preset, model=ModelConfig(**arch), train=TrainConfig())
    return validate(config.replace(train=train))


def paper_parameters(config: Config) -> int | None:
    """The paper's parameter count for this configuration's task and model, if it has the
    paper's architecture (heads, controller size and layers, 128 x 20 memory, shifts -1..1;
    for the LSTM baseline, its size and layers)."""
    m = config.model
    if (config.task, m.kind) not in PAPER_MODELS:
        return None
    reference = resolve(config.task, m.kind, "paper").model
    fields = ["controller_size", "controller_layers"]
    if m.kind != "lstm":
        fields += ["read_heads", "write_heads", "memory_rows", "memory_width", "shift_radius"]
    same = all(getattr(m, f) == getattr(reference, f) for f in fields)
    return PAPER_MODELS[(config.task, m.kind)]["parameters"] if same else None


def capacity_warnings(config: Config, sizes: list[dict[str, Any]] | None = None) -> list[str]:
    """Warnings for sizes (None: the training range) whose sequences ask the NTM to store
    more vectors than its memory has rows. It can still run; it cannot get them all right."""
    if config.model.kind == "lstm":
        return []
    task, rows = tasks.get(config.task), config.model.memory_rows
    warnings = []
    for size in [None] if sizes is None else sizes:
        need = task.memory_needed(size)
        if need is not None and need > rows:
            what = (task.describe_size(size) if size else
                    f"training on {task.training_range()}")
            warnings.append(
                f"{what}: the NTM must store {need} vectors, more than its memory's {rows} "
                f"rows (model.memory_rows), so expect errors; use a larger memory or "
                f"shorter sequences"
            )
    return warnings


def validate(config: Config) -> Config:
    """Check every field before any work starts; raise ConfigError naming the first bad one."""
    m, t = config.model, config.train
    if config.task not in tasks.names():
        raise ConfigError(
            f"unknown task {config.task!r}; the tasks are: {', '.join(tasks.names())}"
        )
    if m.kind not in MODELS:
        raise ConfigError(f"unknown model {m.kind!r}; the models are: {', '.join(MODELS)}")
    if t.optimizer not in OPTIMIZERS:
        raise ConfigError(
            f"unknown optimizer {t.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}"
        )
    if t.grad_clip_mode not in CLIP_MODES:
        raise ConfigError(
            f"unknown grad_clip_mode {t.grad_clip_mode!r}; choose one of: {', '.join(CLIP_MODES)}"
        )
    if t.on_nonfinite not in NONFINITE_ACTIONS:
        raise ConfigError(
            f"unknown on_nonfinite {t.on_nonfinite!r}; choose one of: "
            f"{', '.join(NONFINITE_ACTIONS)}"
        )
    if m.memory_init not in MEMORY_INITS:
        raise ConfigError(
            f"unknown memory_init {m.memory_init!r}; choose one of: {', '.join(MEMORY_INITS)}"
        )
    for name in ("controller_size", "controller_layers", "read_heads", "write_heads",
                 "memory_rows", "memory_width"):
        _positive_int(f"model.{name}", getattr(m, name))
    for name in ("batch_size", "sequences", "eval_every", "val_size", "eval_count", "patience"):
        _positive_int(f"train.{name}", getattr(t, name))
    if not isinstance(t.max_rollbacks, int) or isinstance(t.max_rollbacks, bool) \
            or t.max_rollbacks < 0:
        raise ConfigError(f"train.max_rollbacks={t.max_rollbacks!r} must be an integer >= 0")
    if not isinstance(m.shift_radius, int) or not 0 <= m.shift_radius < m.memory_rows / 2:
        raise ConfigError(
            f"model.shift_radius={m.shift_radius!r} must be an integer >= 0 and smaller than "
            f"memory_rows / 2 = {m.memory_rows / 2:g}; the paper uses 1"
        )
    for name, value in (("model.clip", m.clip), ("train.lr", t.lr),
                        ("train.grad_clip", t.grad_clip)):
        _positive_float(name, value)
    if t.minutes is not None:
        _positive_float("train.minutes", t.minutes)
    if t.lr_half_life is not None:
        _positive_int("train.lr_half_life", t.lr_half_life)
    if t.lr_plateau_factor is not None and not (
            isinstance(t.lr_plateau_factor, (int, float)) and 0 < t.lr_plateau_factor < 1):
        raise ConfigError(
            f"train.lr_plateau_factor={t.lr_plateau_factor!r} must be a number between 0 and "
            "1 (exclusive), e.g. 0.5, or none to keep the rate"
        )
    _positive_int("train.lr_plateau_patience", t.lr_plateau_patience)
    _positive_float("train.lr_min", t.lr_min)
    for name in ("early_stop", "tensorboard"):
        if not isinstance(getattr(t, name), bool):
            raise ConfigError(f"train.{name}={getattr(t, name)!r} must be true or false")
    if not isinstance(t.seed, int) or t.seed < 0:
        raise ConfigError(f"train.seed={t.seed!r} must be a non-negative integer")
    return config


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer")


def _positive_float(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={value!r} must be a positive, finite number")


def apply_overrides(config: Config, assignments: list[str]) -> Config:
    """Apply ``section.field=value`` strings (as given to ``diffmem train --set``)."""
    for text in assignments:
        name, sep, raw = text.partition("=")
        section, _, field_name = name.strip().partition(".")
        classes = {"model": ModelConfig, "train": TrainConfig}
        fields = {f.name: f for f in dataclasses.fields(classes[section])} if section in classes else {}
        if not sep or field_name not in fields:
            known = [f"{s}.{f.name}" for s, c in classes.items() for f in dataclasses.fields(c)]
            raise ConfigError(
                f"--set {text!r} is not FIELD=VALUE with a known field; the fields are: "
                + ", ".join(known)
            )
        current = getattr(getattr(config, section), field_name)
        optional = "None" in str(fields[field_name].type)
        value = _parse_value(text, raw.strip(), current, optional)
        config = config.replace(**{section: {field_name: value}})
    return validate(config)


def _parse_value(text: str, raw: str, current: Any, optional: bool) -> Any:
    if optional and raw.lower() in ("none", "null"):
        return None
    try:
        if isinstance(current, bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return raw.lower() in ("true", "1")
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float) or current is None:
            return float(raw)
    except ValueError:
        raise ConfigError(
            f"--set {text!r}: {raw!r} is not a valid {type(current).__name__}"
        ) from None
    return raw
