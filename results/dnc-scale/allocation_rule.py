"""Allocation ranked pairwise against sorted inside a whole DNC training update, the choice
``diffmem.dnc_addressing.SORT_FROM_ENTRIES`` makes: the DNC at the paper's bAbI sizes
(W = 64, R = 4, LSTM 256, none of the refinements), dense and with ``link_topk=8``, copy
length 20, two rounds of each (memory rows, batch size) case, the two ways one after the
other (first the way of 0.22's rule, which sorted from 512 rows).

    python results/dnc-scale/allocation_rule.py > results/dnc-scale/allocation-rule.json
    python results/dnc-scale/allocation_rule.py --cases 128x16,256x1 \
        > results/dnc-scale/allocation-rule-more.json
"""

from __future__ import annotations

import argparse
import json

from diffmem import dnc_addressing as da
from diffmem.bench import benchmark
from diffmem.config import resolve
from diffmem.training.summary import machine_description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="256x16,256x64,128x64,512x1",
                        help="ROWSxBATCH, comma-separated")
    args = parser.parse_args()
    cases = [tuple(map(int, c.split("x"))) for c in args.cases.split(",")]
    paper = resolve("copy", "dnc").replace(model=dict(
        memory_width=64, read_heads=4, controller_size=256, content_masking=False,
        deallocation=False, link_sharpness=False))
    rows = []
    for round_ in range(2):
        for k in (None, 8):
            config = paper.replace(model=dict(link_topk=k))
            for n, b in cases:
                for way in (("sorted", "ranked") if n >= 512 else ("ranked", "sorted")):
                    # The DNC step calls da.allocation: force one way for the whole update.
                    da.allocation = getattr(da, f"_{way}_allocation")
                    r = benchmark([b], seconds=5, config=config, memory_rows=[n])[0]
                    rows.append({"round": round_, "link_topk": k, "memory_rows": n,
                                 "batch_size": b, "allocation": way,
                                 "sequences_per_second": r["sequences_per_second"],
                                 "device": machine_description()})
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
