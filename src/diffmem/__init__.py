"""diffmem: memory-augmented neural networks (the Neural Turing Machine and the
Differentiable Neural Computer) in JAX.

    import diffmem
    model, config = diffmem.load("runs/copy")
    logits, state = model(inputs)          # (B, T, C_in) -> (B, T, C_out)
    model, config, info = diffmem.load_pretrained("copy")   # shipped, trained, no training

Modules: ``addressing`` and ``memory`` (pure functions, one equation each), ``ntm`` (NTMCell,
NTM), ``dnc_addressing`` (the DNC's allocation, links and read modes), ``dnc`` (DNCCell, DNC),
``sparse_memory`` and ``sam`` (sparse access memory: SAMCell, SAM), ``sdnc`` (the sparse DNC:
SDNCCell, SDNC),
``lstm`` (the paper's LSTM baseline: LSTMCell, LSTM), ``models`` (the registry of model kinds),
``tasks`` (the paper's five tasks by name), ``losses``, ``config`` and ``presets``,
``training`` (the training loop), ``machine`` (XLA's settings for this machine), ``rundir`` (a
run directory's files), ``plots`` (the paper's figures), ``report`` (an HTML page per run),
``demo`` (the pretrained models shipped in the package), ``console``, ``cli`` and
``overrides`` (the command line).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

__version__ = "0.27.0"  # pyproject.toml's version (tests/test_cli.py checks they agree)

# The public names and the modules that define them. They are imported on first use (PEP 562),
# so that `import diffmem.cli`, and with it `diffmem --version`, does not start JAX.
_EXPORTS = {
    "DNC": "diffmem.dnc", "DNCCell": "diffmem.dnc", "DNCState": "diffmem.dnc",
    "DNCTrace": "diffmem.dnc", "LSTM": "diffmem.lstm", "LSTMCell": "diffmem.lstm",
    "NTM": "diffmem.ntm", "NTMCell": "diffmem.ntm", "NTMState": "diffmem.ntm",
    "Trace": "diffmem.ntm", "SAM": "diffmem.sam", "SAMCell": "diffmem.sam",
    "SAMState": "diffmem.sam", "SAMTrace": "diffmem.sam", "SDNC": "diffmem.sdnc",
    "SDNCCell": "diffmem.sdnc", "SDNCState": "diffmem.sdnc",
    "build_model": "diffmem.models", "load": "diffmem.trained",
    "train_and_evaluate": "diffmem.training", "train_population": "diffmem.training",
    "load_pretrained": "diffmem.demo",
}

__all__ = ["DNC", "DNCCell", "DNCState", "DNCTrace", "LSTM", "LSTMCell", "NTM", "NTMCell",
           "NTMState", "Trace", "SAM", "SAMCell", "SAMState", "SAMTrace", "SDNC", "SDNCCell",
           "SDNCState", "build_model", "load",
           "load_pretrained", "train_and_evaluate", "train_population", "__version__"]

if TYPE_CHECKING:  # what type checkers and editors see
    from diffmem.demo import load_pretrained
    from diffmem.dnc import DNC, DNCCell, DNCState, DNCTrace
    from diffmem.lstm import LSTM, LSTMCell
    from diffmem.models import build_model
    from diffmem.ntm import NTM, NTMCell, NTMState, Trace
    from diffmem.sam import SAM, SAMCell, SAMState, SAMTrace
    from diffmem.sdnc import SDNC, SDNCCell, SDNCState
    from diffmem.trained import load
    from diffmem.training import train_and_evaluate, train_population


def __getattr__(name: str) -> Any:
    """A public name, or a submodule (``diffmem.tasks``), imported on first use."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif not name.startswith("_") and importlib.util.find_spec(f"diffmem.{name}") is not None:
        value = importlib.import_module(f"diffmem.{name}")
    else:
        raise AttributeError(f"module 'diffmem' has no attribute {name!r}")
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
