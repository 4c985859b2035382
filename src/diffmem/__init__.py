"""diffmem: memory-augmented neural networks (the Neural Turing Machine and the
Differentiable Neural Computer) in JAX.

    import diffmem
    model, config = diffmem.load("runs/copy")
    logits, state = model(inputs)          # (B, T, C_in) -> (B, T, C_out)
    model, config, info = diffmem.load_pretrained("copy")   # shipped, trained, no training

Modules: ``addressing`` and ``memory`` (pure functions, one equation each), ``ntm`` (NTMCell,
NTM), ``dnc_addressing`` (the DNC's allocation, links and read modes), ``dnc`` (DNCCell, DNC),
``lstm`` (the paper's LSTM baseline), ``models`` (the registry of model kinds),
``tasks`` (the paper's five tasks by name), ``losses``, ``config`` and ``presets``, ``train``
and ``resume`` (the training loop), ``rundir`` (a run directory's files), ``plots`` (the
paper's figures), ``report`` (an HTML page per run), ``demo`` (the pretrained models shipped in
the package), ``console`` and ``cli`` (the command line).
"""

__version__ = "0.19.1"

from diffmem.demo import load_pretrained  # noqa: E402
from diffmem.dnc import DNC, DNCCell, DNCState, DNCTrace  # noqa: E402
from diffmem.lstm import LSTM  # noqa: E402
from diffmem.models import build_model, load  # noqa: E402
from diffmem.ntm import NTM, NTMCell, NTMState, Trace  # noqa: E402

__all__ = ["DNC", "DNCCell", "DNCState", "DNCTrace", "LSTM", "NTM", "NTMCell", "NTMState",
           "Trace", "build_model", "load", "load_pretrained", "__version__"]
