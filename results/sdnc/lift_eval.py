"""`diffmem eval` with the SDNC's allocation on usage lifted to LIFT + (1 - LIFT) u, as it was
before 0.26.0 with LIFT = 1e-6 (the DNC's): a study of why long copies failed, not a setting
of the library, whose SDNC allocates on the usage as it is.

    python results/sdnc/lift_eval.py LIFT RUN_DIR [diffmem eval's options...]

Lifted, the K - 1 rows after the least used get allocation weights of about 1e-6, 1e-12 and
1e-18 at every write, which rank them behind every row still unused, so each write uses up
more fresh rows than the one it writes. The model is the trained one, unchanged.
"""

from __future__ import annotations

import sys

from diffmem import cli, sdnc


def main() -> int:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    lift, allocate = float(sys.argv[1]), sdnc.sparse_allocation
    sdnc.sparse_allocation = lambda usage, k, _lift=0.0: allocate(usage, k, lift)
    return cli.main(["eval", *sys.argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
