"""Recovery rules: what a run does when its training goes wrong, as plug-ins of the loop.

A rule is a small object with two hooks (``Rule``): ``on_nonfinite``, at a log point whose
stretch held a non-finite update, and ``on_log_point``, after every validated log point. The
loop consults the rules in order and stops at the first that acts; it reads none of their
settings. ``rules(config)`` builds a run's rules from its configuration:

- ``Rollback`` (``train.on_nonfinite="rollback"``): back to the last log point, fresh batches;
- ``Restart`` (``train.restart_after``): fresh weights off a plateau some seeds never leave;
- ``ReturnToBest`` (``train.collapse_above``): back to the best model after a collapse, at a
  rate the plateau rule cuts (``diffmem.training.optim.cut_rate``).

What a rule does is recorded in the loop's state (``rollbacks``, ``restarts``,
``collapses``), so that checkpoints and the summary hold it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import jax
from flax import nnx

from diffmem.config import Config
from diffmem.models import build_model
from diffmem.training.optim import cut_rate, make_optimizer
from diffmem.training.state import LoopState

if TYPE_CHECKING:  # the loop imports this module; its session is an argument here
    from diffmem.training.loop import Session


class NonFinite(NamedTuple):
    """The first non-finite update since the last log point (it was skipped)."""

    update: int  # counted from 1
    quantity: str  # "loss" or "gradients"
    count: int  # non-finite updates of the stretch
    stretch: int  # updates of the stretch


class Rule:
    """A recovery rule; this base class never acts."""

    def on_nonfinite(self, loop: LoopState, s: Session, event: NonFinite) -> bool:
        """The stretch since the last log point held a non-finite update (``loop``'s
        parameters are finite: such updates are skipped). Return True if the rule recovered
        and the run goes on; with no rule that does, the run stops."""
        return False

    def on_log_point(self, loop: LoopState, s: Session, improved: bool) -> bool:
        """A log point on the ``eval_every`` grid was validated and logged (``improved``: it
        is the new best). Return True if the rule acted."""
        return False


class Rollback(Rule):
    """Return to the last log point with a fresh batch stream, at most ``limit`` times."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def on_nonfinite(self, loop: LoopState, s: Session, event: NonFinite) -> bool:
        if loop.rollbacks >= self.limit:
            return False
        loop.roll_back()
        s.say(f"[yellow]Non-finite {event.quantity} at update {event.update:,} ({event.count} "
              f"of the last {event.stretch} updates); rolled back to the checkpoint at "
              f"{loop.sequences:,} sequences and went on with fresh batches (rollback "
              f"{loop.rollbacks} of at most {self.limit}).")
        return True


def restart_key(seed: int, restart: int) -> jax.Array:
    """The key of restart ``restart``'s initial weights (1, 2, ...), one per seed and
    restart."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 2), restart)


class Restart(Rule):
    """Start again from fresh initial weights, with a fresh optimiser and rate schedule, at
    the first log point at least ``after`` sequences after the last start where validation is
    still above ``above`` bits per sequence (or not finite) and the target was never met.
    Batches go on from the update reached. Variables other than parameters (a random initial
    memory) stay. The best log point so far stays the best until a later one beats it."""

    def __init__(self, config: Config, after: int, above: float) -> None:
        self.config, self.after, self.above = config, after, above

    def on_log_point(self, loop: LoopState, s: Session, improved: bool) -> bool:
        since = loop.sequences - loop.started[0]
        bits = loop.validation["bits"]
        if loop.first_target is not None or since < self.after or bits < self.above:
            return False
        n = len(loop.restarts) + 1
        model = build_model(self.config, seed=restart_key(self.config.train.seed, n))
        _, params, _ = nnx.split(model, nnx.Param, ...)
        loop.restarts.append({"sequences": loop.sequences, "step": int(loop.state.step),
                              "val_bits": bits if math.isfinite(bits) else None})
        loop.state = loop.state._replace(
            params=params, opt_state=make_optimizer(self.config.train).init(params))
        s.say(f"[yellow]Validation at {bits:.1f} bits per sequence after {since:,} "
              f"sequences, above train.restart_above={self.above:g}: starting again from fresh "
              f"initial weights and rate (restart {n}) at {loop.sequences:,} sequences.")
        return True


class ReturnToBest(Rule):
    """At a log point whose validation is more than ``above`` bits per sequence behind the
    best log point's (or not finite), put the best point's parameters in place of the
    collapsed ones and cut the plateau rule's rate by its factor (down to lr_min), as a
    plateau would, with its cooldown. The optimiser's moments, the update count and the
    batches go on; the streaks of points below the target and passing the check start again.
    A best point from before the last restart does not count: going back to it would undo
    the restart."""

    def __init__(self, config: Config, above: float) -> None:
        self.config, self.above = config, above

    def on_log_point(self, loop: LoopState, s: Session, improved: bool) -> bool:
        best = loop.best
        if improved or loop.best_params is None:
            return False
        best_bits = best["validation"]["bits"]
        since_start = not loop.restarts or best["sequences"] > loop.started[0]
        bits = loop.validation["bits"]
        if not since_start or best_bits is None or bits <= best_bits + self.above:
            return False
        t = self.config.train
        opt_state, scale = cut_rate(t, loop.state.opt_state)
        loop.collapses.append({"sequences": loop.sequences, "step": int(loop.state.step),
                               "val_bits": bits if math.isfinite(bits) else None,
                               "to_sequences": best["sequences"], "to_val_bits": best_bits})
        loop.state = loop.state._replace(params=loop.best_params, opt_state=opt_state)
        loop.streak = loop.check_streak = 0
        s.say(f"[yellow]Validation at {bits:.2f} bits per sequence, more than "
              f"train.collapse_above={self.above:g} above the best ({best_bits:.2f} at "
              f"{best['sequences']:,} sequences): going on from the best model at "
              f"{scale * t.lr:.3g}, the rate cut by "
              f"train.lr_plateau_factor={t.lr_plateau_factor:g}.")
        return True


def rules(config: Config) -> list[Rule]:
    """The recovery rules ``config`` asks for, in the order the loop consults them."""
    t = config.train
    out: list[Rule] = []
    if t.on_nonfinite == "rollback":
        out.append(Rollback(t.max_rollbacks))
    if t.restart_after > 0:
        out.append(Restart(config, t.restart_after, t.restart_above))
    if t.collapse_above is not None:
        out.append(ReturnToBest(config, t.collapse_above))
    return out
