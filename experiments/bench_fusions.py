"""Training throughput with XLA's YNNPACK fusions on and off, one model and populations.

    python experiments/bench_fusions.py --json > results/bench/bench-fusions-cpu.json

diffmem compiles an update without the fusions where that is faster on a CPU
(``diffmem.train.compiler_options``: every population, one model from batch 32). This times the
default copy model both ways, at batch sizes 16, 32 and 64 and as populations of 4 and 10 at
batch 1, so that the choice can be checked on another machine.
"""

from __future__ import annotations

import argparse
import json

from diffmem import bench, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="timed seconds per row")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args()
    chosen = train.compiler_options
    forced = {"on": lambda batch_size, members=1: {},
              "off": lambda batch_size, members=1: dict(train.YNN_OFF)}
    rows = []
    for setting in ("on", "off"):
        train.compiler_options = forced[setting]  # what train.compile_step looks up
        try:
            for populations, sizes in ((None, [16, 32, 64]), ([4, 10], [1])):
                for row in bench.benchmark(sizes, seconds=args.seconds,
                                           populations=populations):
                    row["ynn_fusions"] = setting == "on"
                    row["diffmem_uses"] = "off" if chosen(row["batch_size"],
                                                          row.get("population", 1)) else "on"
                    rows.append(row)
        finally:
            train.compiler_options = chosen
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print(f"population {r.get('population', '-'):>3}  batch {r['batch_size']:>3}  fusions "
              f"{'on ' if r['ynn_fusions'] else 'off'}  {r['sequences_per_second']:7.0f} seq/s  "
              f"(diffmem uses {r['diffmem_uses']})")


if __name__ == "__main__":
    main()
