"""Loading a trained model: from a run directory (its best checkpoint) or a checkpoint file."""

from __future__ import annotations

import os
from pathlib import Path

from flax import nnx

from diffmem import checkpoint
from diffmem.config import Config, ConfigError
from diffmem.models import build_model


def load(run_dir: str | os.PathLike) -> tuple[nnx.Module, Config]:
    """Load the trained model of a run directory (its best checkpoint) or of a checkpoint
    file, and its configuration, on the memory it is evaluated with
    (``ModelConfig.eval_memory_rows``, if set).

    >>> model, config = diffmem.load("runs/copy")            # doctest: +SKIP
    >>> logits, state = model(inputs)  # inputs (B, T, C_in) -> logits (B, T, C_out)

    No code is executed from the files: tensors come from safetensors, settings from JSON.
    """
    path = Path(run_dir)
    if (path / "population.json").is_file():  # diffmem.training.population.POPULATION
        members = sorted(p.name for p in path.iterdir() if (p / "config.json").is_file())
        raise checkpoint.CheckpointError(
            f"{path} holds a population, not one run; name a member's directory, one of: "
            + ", ".join(str(path / m) for m in members))
    if path.is_dir():  # the best checkpoint; a run from before there was one has the last
        best = path / checkpoint.BEST
        path = best if best.is_file() else path / checkpoint.FILENAME
    elif not path.exists():
        raise checkpoint.CheckpointError(f"no run directory or checkpoint at {path}")
    tensors, header = checkpoint.read(path)
    try:
        config = Config.from_dict(header["config"])
    except (KeyError, TypeError, ConfigError) as err:
        raise checkpoint.CheckpointError(
            f"checkpoint {path} has an unreadable config: {err}") from None
    model = build_model(config, evaluation=True)
    restored = checkpoint.restore_state(path, nnx.state(model), tensors)
    nnx.update(model, restored)
    return model, config
