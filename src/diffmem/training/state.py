"""What the training loop carries between updates, and how it survives a stop.

``LoopState`` is the loop's state: the arrays (``TrainState``) and the counters beside them.
``RollbackPoint`` is where a rollback after a non-finite step returns to: the last log point.
``save_checkpoint`` writes both to the run's checkpoint; ``start_run`` and ``resume_run`` build
the state of a fresh run or of one continued from its checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from diffmem import checkpoint, rundir
from diffmem.config import RESUMABLE_TRAIN_FIELDS, Config

ROLLBACK_PREFIX = "rollback"  # checkpoint tensors of the rollback point (interrupts only)
BEST_PREFIX = "best"  # checkpoint tensors of the best log point's parameters


class TrainState(NamedTuple):
    """The arrays one jit-compiled update reads and returns."""

    params: nnx.State  # the trained variables (nnx.Param)
    opt_state: Any
    step: jax.Array  # () int32, updates done so far
    stream: Any = 0  # () int32, the batch stream: 0 at first, +1 at each rollback


class FirstTarget(NamedTuple):
    """When validation first went below the target."""

    sequences: int
    seconds: float


class RollbackPoint(NamedTuple):
    """The last log point: the state and counters a rollback returns to."""

    state: TrainState
    sequences: int
    streak: int
    first_target: FirstTarget | None
    check_streak: int = 0


@dataclass
class LoopState:
    """Everything the training loop changes as it goes; all of it but the last three fields is
    saved in the checkpoint, so that a resumed run goes on exactly as an uninterrupted one."""

    state: TrainState
    sequences: int = 0  # sequences trained on
    seconds: float = 0.0  # wall time at the last log point, earlier attempts included
    streak: int = 0  # validation points in a row below the target
    first_target: FirstTarget | None = None
    check_streak: int = 0  # validation points in a row that passed the generalisation check
    # The best log point so far (what diffmem.training.loop.keep_best records), None before
    # the first; its parameters are ``best_params``.
    best: dict[str, Any] | None = None
    rollbacks: int = 0
    nonfinite: list[dict[str, Any]] = field(default_factory=list)  # events, as in the summary
    # Fresh starts off a plateau (TrainConfig.restart_after), as in the summary: each at
    # ``sequences`` and update ``step``, from ``val_bits``.
    restarts: list[dict[str, Any]] = field(default_factory=list)
    # Returns to the best log point after a collapse (TrainConfig.collapse_above), as in the
    # summary.
    collapses: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)  # update metrics since last log
    rollback: RollbackPoint | None = None
    log_time: float = 0.0  # perf_counter() at the last log point (or the start)
    log_sequences: int = 0  # sequences at the last log point
    validation: dict[str, Any] | None = None  # the last log point's validation metrics
    best_params: nnx.State | None = None  # saved as checkpoint tensors, not as counters

    @property
    def started(self) -> tuple[int, int]:
        """(sequences, update) at which the current parameters were initialised."""
        last = self.restarts[-1] if self.restarts else {"sequences": 0, "step": 0}
        return last["sequences"], last["step"]

    def on_log_grid(self, eval_every: int) -> bool:
        """Whether training has crossed a multiple of ``eval_every`` sequences since the last
        log point: where an uninterrupted run, resumed or not, has its log points."""
        return self.sequences // eval_every > self.log_sequences // eval_every

    def mark(self) -> RollbackPoint:
        return RollbackPoint(self.state, self.sequences, self.streak, self.first_target,
                             self.check_streak)

    def roll_back(self) -> None:
        """Return to the rollback point, with a fresh batch stream."""
        self.rollbacks += 1
        point = self.rollback
        self.state = point.state._replace(stream=jnp.asarray(self.rollbacks, jnp.int32))
        self.sequences, self.streak = point.sequences, point.streak
        self.first_target, self.check_streak = point.first_target, point.check_streak

    def counters(self, interrupted: bool = False) -> dict[str, Any]:
        """The checkpoint header's counters. An interrupt between log points also stores the
        metrics of the updates since the last one and the rollback point's counters."""
        point = self.rollback
        return {
            "sequences": self.sequences, "seconds": self.seconds, "streak": self.streak,
            "first_target": _as_dict(self.first_target), "check_streak": self.check_streak,
            "best": self.best, "rollbacks": self.rollbacks, "nonfinite": self.nonfinite,
            "restarts": self.restarts, "collapses": self.collapses,
            "pending": pack_pending(self.pending) if interrupted else None,
            "rollback": {"sequences": point.sequences, "streak": point.streak,
                         "first_target": _as_dict(point.first_target),
                         "check_streak": point.check_streak,
                         "step": int(point.state.step)} if interrupted else None,
        }


def _as_dict(target: FirstTarget | None) -> dict[str, Any] | None:
    return None if target is None else target._asdict()


def _first_target(data: dict[str, Any] | None) -> FirstTarget | None:
    return None if data is None else FirstTarget(data["sequences"], data["seconds"])


def save_checkpoint(run_dir: Path, config: Config, loop: LoopState, rest: nnx.State,
                    status: str, interrupted: bool = False) -> None:
    """Checkpoint the run, with the best log point's parameters beside its own (and, after an
    interrupt, the rollback point's arrays).

    The last checkpoint alone is what a resumed run reads, best parameters included. The
    training loop writes ``best.safetensors`` (``save_best``) after it whenever the best point
    changes, and again on resuming: a kill between the two writes leaves the best model one
    point behind until then."""
    point = loop.rollback
    extra = {} if loop.best_params is None else {BEST_PREFIX: loop.best_params}
    if interrupted:
        extra[ROLLBACK_PREFIX] = (point.state.params, point.state.opt_state)
    meta = {"config": config.to_dict(), "step": int(loop.state.step),
            "counters": loop.counters(interrupted), "status": status}
    model_state = nnx.merge_state(loop.state.params, rest)
    checkpoint.save(run_dir / checkpoint.FILENAME, model_state, meta, loop.state.opt_state, extra)


def save_best(run_dir: Path, config: Config, loop: LoopState, rest: nnx.State) -> None:
    """Write the best log point's model as ``best.safetensors`` (no optimiser state: it is
    for evaluation); nothing before the first log point."""
    best = loop.best
    if best is None:
        return
    meta = {"config": config.to_dict(), "step": best["step"],
            "counters": {"sequences": best["sequences"], "seconds": best["seconds"]},
            "status": "best", "best": best}
    checkpoint.save(run_dir / checkpoint.BEST, nnx.merge_state(loop.best_params, rest), meta)


def start_run(run_dir: Path, model: nnx.Module, tx: optax.GradientTransformation) -> LoopState:
    """The state of a fresh run in ``run_dir``, which must not hold a run already."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if (run_dir / checkpoint.FILENAME).exists():
        raise checkpoint.CheckpointError(
            f"{run_dir} already holds a run ({checkpoint.FILENAME}); pass --resume to continue "
            "it or choose another --run-dir"
        )
    # A best checkpoint without a last one is from an attempt killed at its first log point.
    (run_dir / checkpoint.BEST).unlink(missing_ok=True)
    rundir.start_metrics(run_dir)
    _, params, _ = nnx.split(model, nnx.Param, ...)
    zero = jnp.asarray(0, jnp.int32)
    loop = LoopState(TrainState(params, tx.init(params), zero, zero))
    loop.rollback = loop.mark()
    return loop


def resume_run(run_dir: Path, config: Config, model: nnx.Module,
           tx: optax.GradientTransformation) -> LoopState:
    """Restore ``model`` (in place) and the loop state from the run's checkpoint, and drop the
    validation points logged after it. Only the fields in RESUMABLE_TRAIN_FIELDS may differ
    from the configuration the run was started with."""
    path = run_dir / checkpoint.FILENAME
    tensors, header = checkpoint.read(path)
    saved = Config.from_dict(header["config"])
    changeable = {name: getattr(config.train, name) for name in RESUMABLE_TRAIN_FIELDS}
    if saved.replace(train=changeable) != config:
        raise checkpoint.CheckpointError(
            f"{path} was written with a different configuration; a resumed run may change only "
            f"train.{', train.'.join(RESUMABLE_TRAIN_FIELDS)}"
        )
    nnx.update(model, checkpoint.restore_state(path, nnx.state(model), tensors))
    _, params, _ = nnx.split(model, nnx.Param, ...)
    opt_state = checkpoint.restore_tree(path, tx.init(params), tensors, "optimizer")
    c = {"seconds": 0.0, "streak": 0, "first_target": None, "check_streak": 0, "best": None,
         "rollbacks": 0, "nonfinite": [], "restarts": [], "collapses": [], "pending": None,
         "rollback": None, **header["counters"]}
    state = TrainState(params, opt_state, jnp.asarray(header["step"], jnp.int32),
                       jnp.asarray(c["rollbacks"], jnp.int32))
    loop = LoopState(state, c["sequences"], c["seconds"], c["streak"],
                     _first_target(c["first_target"]), c["check_streak"], c["best"],
                     c["rollbacks"], c["nonfinite"], c["restarts"],
                     collapses=c["collapses"], pending=unpack_pending(c["pending"]))
    loop.rollback = loop.mark()
    if c["best"] is not None:
        loop.best_params = checkpoint.restore_tree(path, params, tensors, BEST_PREFIX)
    if c["rollback"]:  # interrupted between log points: the last log point's state is stored
        point = c["rollback"]
        good = checkpoint.restore_tree(path, (params, opt_state), tensors, ROLLBACK_PREFIX)
        loop.rollback = RollbackPoint(
            TrainState(*good, jnp.asarray(point["step"], jnp.int32), state.stream),
            point["sequences"], point["streak"], _first_target(point["first_target"]),
            point.get("check_streak", 0))
    rundir.truncate_metrics(run_dir, loop.sequences)
    return loop


# Per-update training metrics between log points.

_PENDING_DTYPES = {"finite": bool, "loss_finite": bool, "grads_finite": bool}


def stack_pending(pending: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per-update training metrics as host arrays, one per metric, stacked over the updates."""
    return jax.device_get({k: jnp.stack([p[k] for p in pending]) for k in pending[0]})


def pack_pending(pending: list[dict[str, Any]]) -> dict[str, list] | None:
    """The metrics as JSON lists (float32 values convert to doubles exactly)."""
    if not pending:
        return None
    stacked = stack_pending(pending)
    return {k: [bool(x) if v.dtype == bool else float(x) for x in v] for k, v in stacked.items()}


def unpack_pending(packed: dict[str, list] | None) -> list[dict[str, np.ndarray]]:
    if not packed:
        return []
    n = len(next(iter(packed.values())))
    return [{k: np.asarray(v[i], dtype=_PENDING_DTYPES.get(k, np.float32))
             for k, v in packed.items()} for i in range(n)]
