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

MODELS = ("ntm-lstm", "ntm-ff")
OPTIMIZERS = ("adam", "rmsprop")
CLIP_MODES = ("norm", "value")


class ConfigError(ValueError):
    """A configuration value a user gave is invalid; the message says which and what to do."""


@dataclass(frozen=True)
class ModelConfig:
    """The network. Defaults are the paper's LSTM-controller NTM for the copy task (Table 2)."""

    kind: str = "ntm-lstm"  # ntm-lstm or ntm-ff: LSTM or feed-forward controller
    controller_size: int = 100  # H; the paper's copy NTMs use 100 units
    controller_layers: int = 1  # the paper's NTMs have one controller layer (but priority sort)
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
    grad_clip: float = 10.0  # clip by global norm (Collier & Beel: 50; our measured runs: 10)
    grad_clip_mode: str = "norm"  # "norm": by global norm; "value": elementwise (the paper)
    seed: int = 0  # fixes parameter initialisation and every training batch
    eval_every: int = 4_000  # sequences between validation / log points
    val_size: int = 512  # sequences in the fixed, seeded validation set
    eval_count: int = 256  # sequences per size in the final generalisation evaluation
    early_stop: bool = True  # stop once validation bits < the task's target
    patience: int = 2  # ... at this many consecutive validation points


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


# Presets: field overrides on top of the defaults, by name, per (task, model kind).
# "paper" is the setting of Graves et al. (2014), Table 2 (and SPEC section 1): RMSProp with
# momentum 0.9, one sequence per update, elementwise clipping. The defaults differ in what makes
# training fast here: batch 32, Adam at 3e-3, global-norm clipping (README, "Defaults and the
# paper").
_PAPER_NTM = {
    ("copy", "ntm-lstm"): dict(model=dict(controller_size=100, read_heads=1, write_heads=1),
                               train=dict(lr=1e-4)),
    ("copy", "ntm-ff"): dict(model=dict(controller_size=100, read_heads=1, write_heads=1),
                             train=dict(lr=1e-4)),
}
_PAPER_TRAIN = dict(optimizer="rmsprop", batch_size=1, grad_clip=10.0, grad_clip_mode="value",
                    lr_half_life=None)


def preset_names() -> list[str]:
    return ["default", "paper"]


def resolve(task: str, model: str = "ntm-lstm", preset: str = "default") -> Config:
    """The configuration for a task, model kind and preset, before command-line overrides."""
    if task not in tasks.names():
        raise ConfigError(f"unknown task {task!r}; the tasks are: {', '.join(tasks.names())}")
    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}; the models are: {', '.join(MODELS)}")
    if preset not in preset_names():
        raise ConfigError(
            f"unknown preset {preset!r}; the presets are: {', '.join(preset_names())}"
        )
    config = Config(task=task, preset=preset, model=ModelConfig(kind=model))
    if preset == "paper":
        if (task, model) not in _PAPER_NTM:
            raise ConfigError(f"there is no paper preset for task {task!r} with model {model!r}")
        over = _PAPER_NTM[(task, model)]
        config = config.replace(model=over["model"], train={**_PAPER_TRAIN, **over["train"]})
    return validate(config)


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
    if m.memory_init not in MEMORY_INITS:
        raise ConfigError(
            f"unknown memory_init {m.memory_init!r}; choose one of: {', '.join(MEMORY_INITS)}"
        )
    for name in ("controller_size", "controller_layers", "read_heads", "write_heads",
                 "memory_rows", "memory_width"):
        _positive_int(f"model.{name}", getattr(m, name))
    for name in ("batch_size", "sequences", "eval_every", "val_size", "eval_count", "patience"):
        _positive_int(f"train.{name}", getattr(t, name))
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
    _positive_float("train.lr_min", t.lr_min)
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
