"""Where a DNC update's time goes at the DNC paper's sizes (W = 64, R = 4, LSTM 256, no
refinements, copy length 20): `diffmem bench`'s whole training update, first as it is, then
with parts of the step replaced by stand-ins that cost almost nothing, cumulatively:

- ``alloc``: allocation becomes (1 - u) / N (no ranking or sorting);
- ``link``: the link update and the directional weightings become the identity (the dense
  (B, N, N) link, or the sparse link's K entries a row, are carried unchanged, and both
  directional weightings are the previous read weightings);
- ``content``: every content lookup (the write key's and the read keys') becomes uniform.

The model with stand-ins is not the DNC; only its time means anything. One JSON line per
(part, batch size):

    python results/dnc-scale/ablate.py N BATCHES LINK PARTS > ablate.jsonl
    e.g. python results/dnc-scale/ablate.py 256 1,16,64 dense \
        base,alloc,link,alloc+link,alloc+link+content

LINK is ``dense`` or K for the sparse link; PARTS is a comma-separated list of ``base`` or
``+``-joined stand-ins.
"""

from __future__ import annotations

import json
import sys

import jax.numpy as jnp

from diffmem import dnc
from diffmem import dnc_addressing as da
from diffmem.bench import benchmark
from diffmem.config import resolve

STAND_INS = {
    "alloc": {"allocation": lambda u: (1.0 - u) / u.shape[-1]},
    "link": {"link_and_directions": lambda link, p, w, r: (link, r, r),
             "sparse_link": lambda link, p, w: link,
             "sparse_directional_weights": lambda link, r: (r, r)},
}


def uniform_content(mem, key, strength, mask):
    return jnp.full(mem.shape[:-1], 1.0 / mem.shape[-2], mem.dtype) + 0.0 * strength[..., None]


def main() -> None:
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    n, link, parts = int(sys.argv[1]), sys.argv[3], sys.argv[4].split(",")
    batches = [int(b) for b in sys.argv[2].split(",")]
    config = resolve("copy", "dnc").replace(model={
        "memory_width": 64, "read_heads": 4, "controller_size": 256,
        "content_masking": False, "deallocation": False, "link_sharpness": False,
        "link_topk": None if link == "dense" else int(link)})
    originals = {name: getattr(da, name) for group in STAND_INS.values() for name in group}
    content = dnc._content
    for part in parts:
        for name, fn in originals.items():
            setattr(da, name, fn)
        dnc._content = content
        for piece in part.split("+"):
            for name, fn in STAND_INS.get(piece, {}).items():
                setattr(da, name, fn)
            if piece == "content":
                dnc._content = uniform_content
        for row in benchmark(batches, seconds=5, config=config, memory_rows=[n]):
            print(json.dumps({"part": part, "memory_rows": n, "link": link,
                              "batch_size": row["batch_size"],
                              "sequences_per_second": row["sequences_per_second"],
                              "step_ms": row["step_ms"], "device": row["device"]}), flush=True)


if __name__ == "__main__":
    main()
