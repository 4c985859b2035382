"""Machine tuning: how XLA uses this machine's threads, in one place.

Two kinds of setting live here. ``XLA_FLAGS`` are read once, when JAX starts its backend, so
the functions that set them import nothing heavy and must run before JAX starts (the commands
call them first). Compilation options are passed to one compiled function at a time; only
that code may import JAX, and only inside the function that needs it.
"""

from __future__ import annotations

import os
import re

# One thread per process on a CPU: a population's update (and a batch-1 update) is many small
# operations, which a second thread slows down more than it shares, and trials side by side
# then share the cores without contending for them.
SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={}"


def one_thread_per_process() -> None:
    """Run XLA's CPU operations on one thread, unless XLA_FLAGS already say how many: the
    setting of every population (and of every trial of a sweep). Their updates are many small
    operations, which two threads slow down more than they share (docs/populations.md). Takes
    effect only before JAX starts its backend, so the commands call it first."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" in flags or "xla_cpu_multi_thread_eigen" in flags:
        return
    os.environ["XLA_FLAGS"] = " ".join([flags, SINGLE_THREAD_XLA.format(1)]).strip()


def worker_xla_flags(threads: int) -> str:
    """XLA_FLAGS for a CPU worker of ``threads`` threads (a sweep's trial), after the user's
    own flags, whose thread settings it replaces."""
    own = os.environ.get("XLA_FLAGS", "")
    own = re.sub(r"--xla_cpu_multi_thread_eigen=\S+|intra_op_parallelism_threads=\S+", "", own)
    return " ".join([own.strip(), SINGLE_THREAD_XLA.format(max(1, threads))]).strip()


# XLA's CPU backend hands memory-sized operations to YNNPACK fusions, which are slow at the
# shapes of a batched memory model: without them populations, and one model from batch 32,
# train faster, while at batch 16 they win (docs/throughput.md). An option of the
# compilation, so a user's XLA_FLAGS stay theirs.
YNN_OFF = {"xla_cpu_experimental_ynn_fusion_type": ""}
YNN_OFF_FROM = 32  # the batch size from which one model's update compiles without them


def compiler_options(batch_size: int, members: int = 1) -> dict[str, str | bool]:
    """The options to compile an update of ``members`` models at ``batch_size`` with."""
    import jax  # here, so that this module loads before JAX starts

    if jax.default_backend() != "cpu" or (members == 1 and batch_size < YNN_OFF_FROM):
        return {}
    if members == 1:
        return dict(YNN_OFF)
    # A population's update is many small operations, which lose more to handing work
    # between Eigen's threads than they gain (docs/throughput.md).
    return {**YNN_OFF, "xla_cpu_multi_thread_eigen": False}
