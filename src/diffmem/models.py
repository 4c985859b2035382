"""Building a model from a configuration, and loading a trained one from its run directory."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from diffmem import checkpoint, tasks
from diffmem.config import Config, ConfigError
from diffmem.lstm import LSTM
from diffmem.ntm import NTM

_CONTROLLER = {"ntm-lstm": "lstm", "ntm-ff": "feedforward"}


def build_model(config: Config, seed: int | None = None) -> NTM | LSTM:
    """A freshly initialised model for ``config`` (seeded by ``config.train.seed`` by default)."""
    task = tasks.get(config.task)
    m = config.model
    rngs = nnx.Rngs(config.train.seed if seed is None else seed)
    if m.kind == "lstm":
        return LSTM(task.input_size, task.output_size, hidden_size=m.controller_size,
                    layers=m.controller_layers, rngs=rngs)
    return NTM(
        task.input_size,
        task.output_size,
        controller=_CONTROLLER[m.kind],
        controller_size=m.controller_size,
        controller_layers=m.controller_layers,
        read_heads=m.read_heads,
        write_heads=m.write_heads,
        memory_rows=m.memory_rows,
        memory_width=m.memory_width,
        shift_radius=m.shift_radius,
        memory_init=m.memory_init,
        clip=m.clip,
        rngs=rngs,
    )


def count_parameters(model: nnx.Module) -> int:
    """Number of trained scalars (nnx.Param), as the paper counts them."""
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def load(run_dir: str | os.PathLike) -> tuple[NTM | LSTM, Config]:
    """Load the trained model of a run directory (or a checkpoint file) and its configuration.

    >>> model, config = diffmem.load("runs/copy")            # doctest: +SKIP
    >>> logits, state = model(inputs)  # inputs (B, T, C_in) -> logits (B, T, C_out)

    No code is executed from the files: tensors come from safetensors, settings from JSON.
    """
    path = Path(run_dir)
    if path.is_dir():
        path = path / checkpoint.FILENAME
    elif not path.exists():
        raise checkpoint.CheckpointError(f"no run directory or checkpoint at {path}")
    tensors, header = checkpoint.read(path)
    try:
        config = Config.from_dict(header["config"])
    except (KeyError, TypeError, ConfigError) as err:
        raise checkpoint.CheckpointError(f"checkpoint {path} has an unreadable config: {err}")
    model = build_model(config)
    restored = checkpoint.restore_state(path, nnx.state(model), tensors)
    nnx.update(model, restored)
    return model, config
