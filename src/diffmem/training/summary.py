"""A finished run's outcome: its summary.json."""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING, Any

import jax
from flax import nnx

from diffmem import rundir
from diffmem.config import paper_parameters
from diffmem.models import for_evaluation
from diffmem.training.evaluation import evaluate
from diffmem.training.state import LoopState

if TYPE_CHECKING:  # the loop imports this module; its session is an argument here
    from diffmem.training.loop import Session


def machine_description() -> str:
    devices = jax.devices()
    kind = devices[0].device_kind if devices else "unknown"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"JAX {jax.__version__} on {devices[0].platform} ({kind})")


def summarise(loop: LoopState, s: Session, model: nnx.Module, status: str, parameters: int,
              compile_seconds: float, **extra: Any) -> dict[str, Any]:
    """The run's outcome, with the evaluation of ``model`` (the best log point's) beyond the
    training range; written to ``summary.json`` with ``extra``."""
    config, t, best, task = s.config, s.config.train, loop.best, s.validation.task
    # The last parameters' validation: the last log point's, or after a non-finite stop (or
    # with no log point at all) their own.
    last = loop.validation or s.validation(loop.state.params)
    # ``model`` is the best log point's, whose validation is stored; without one, the last.
    final = last if best is None else best["validation"]
    if s.validation.optimum is not None:
        final = {**final, "optimal_bits": s.validation.optimum}
    summary = rundir.finite_or_none({
        "task": config.task,
        "model": config.model.kind,
        "preset": config.preset,
        "seed": t.seed,
        "lr": t.lr,
        "parameters": parameters,
        "status": status,
        "sequences": loop.sequences,
        "steps": int(loop.state.step),
        "train_seconds": loop.seconds,
        "compile_seconds": compile_seconds,
        "target_bits": s.validation.target,
        "paper_parameters": paper_parameters(config),
        "reached_target": final["bits"] is not None and final["bits"] < s.validation.target,
        "first_below_target": loop.first_target and loop.first_target._asdict(),
        # Where the evaluated model comes from: the best log point (checkpoint.BEST), its
        # generalisation check, and the last log point's validation for comparison.
        "best": best and {k: best[k] for k in ("sequences", "seconds", "step", "check",
                                                "passed")},
        "last_validation": last,
        "nonfinite_events": loop.nonfinite,
        "rollbacks": loop.rollbacks,
        "restarts": loop.restarts,
        "collapses": loop.collapses,
        "validation": final,
        "generalisation": evaluate(for_evaluation(model, config), task, list(task.eval_sizes),
                                   count=t.eval_count),
        "machine": machine_description(),
        "run_dir": str(s.run_dir),
        **extra,
    })
    rundir.write_summary(s.run_dir, summary)
    return summary
