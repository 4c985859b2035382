"""The optimiser: gradient clipping, Adam or RMSProp, a rate schedule and the plateau rule.

The plateau rule's state is read and changed by its field names (``optax.tree_utils``), never
by its place in the chain, so that reordering the chain cannot silently break it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from diffmem.config import TrainConfig


def make_optimizer(t: TrainConfig, lr: float | jax.Array | None = None
                   ) -> optax.GradientTransformation:
    """Gradient clipping followed by Adam or by RMSProp in the form of Graves (2013), and the
    plateau rule where ``t.lr_plateau_factor`` is set.

    ``lr`` (default ``t.lr``) may be a traced array: a population's members each train at
    their own rate inside one compiled update (``diffmem.training.population``)."""
    lr = t.lr if lr is None else lr
    if t.grad_clip_mode == "norm":
        clip = optax.clip_by_global_norm(t.grad_clip)
    else:
        clip = optax.clip(t.grad_clip)  # elementwise, as in the paper
    rate = schedule(t, lr)
    if t.optimizer == "adam":
        opt = optax.adam(rate)
    else:
        # Centred RMSProp with momentum; epsilon inside the square root (Graves 2013, eq. 38-41).
        opt = optax.rmsprop(rate, decay=0.95, eps=1e-4, centered=True, momentum=0.9)
    if t.lr_plateau_factor is None:
        return optax.chain(clip, opt)
    # Scales the updates, that is the rate, from the training loss that each update passes
    # (``value``), averaged over the updates of one eval_every stretch. A stretch that waits
    # out a reduction (cooldown) does not count toward the next one.
    plateau = optax.contrib.reduce_on_plateau(
        factor=t.lr_plateau_factor, patience=t.lr_plateau_patience,
        cooldown=t.lr_plateau_patience, accumulation_size=max(1, t.eval_every // t.batch_size),
        min_scale=plateau_floor(t, lr))
    return optax.chain(clip, opt, plateau)


def plateau_floor(t: TrainConfig, lr: float | jax.Array) -> float | jax.Array:
    """The least scale of the plateau rule at rate ``lr``: the rate goes no lower than
    lr_min."""
    least = jnp.minimum if isinstance(lr, jax.Array) else min
    return least(1.0, t.lr_min / lr)


def schedule(t: TrainConfig, lr: float | jax.Array | None = None) -> float | optax.Schedule:
    """The rate before the plateau rule: ``lr``, or halved every ``lr_half_life`` sequences
    down to ``lr_min``."""
    lr = t.lr if lr is None else lr
    if t.lr_half_life is None:
        return lr
    least = jnp.minimum if isinstance(lr, jax.Array) else min
    # Counted in updates of batch_size.
    return optax.exponential_decay(
        lr, transition_steps=max(1, t.lr_half_life // t.batch_size), decay_rate=0.5,
        end_value=least(lr, t.lr_min))


def plateau_scale(opt_state: Any) -> jax.Array | None:
    """The plateau rule's scale of the rate in ``opt_state`` (None without the rule)."""
    if optax.tree_utils.tree_get(opt_state, "plateau_count") is None:
        return None
    return optax.tree_utils.tree_get(opt_state, "scale")


def learning_rate(t: TrainConfig, opt_state: Any, step: int) -> float:
    """The rate of the update after ``step`` updates since the optimiser's start: the
    schedule's, times the plateau scale. A log point records the rate its parameters were
    trained at last, also where a restart follows it."""
    rate = schedule(t)
    lr = float(rate(step)) if callable(rate) else rate
    scale = plateau_scale(opt_state)
    return lr if scale is None else lr * float(scale)


def cut_rate(t: TrainConfig, opt_state: Any) -> tuple[Any, float]:
    """``opt_state`` with the plateau rule's rate cut by its factor (down to lr_min) as a
    plateau would, and its cooldown started; and the scale it now has."""
    scale = optax.tree_utils.tree_get(opt_state, "scale")
    count = optax.tree_utils.tree_get(opt_state, "plateau_count")
    cooldown = optax.tree_utils.tree_get(opt_state, "cooldown_count")
    cut = jnp.maximum(scale * t.lr_plateau_factor, plateau_floor(t, t.lr)).astype(scale.dtype)
    opt_state = optax.tree_utils.tree_set(
        opt_state, scale=cut, plateau_count=jnp.zeros_like(count),
        cooldown_count=jnp.asarray(t.lr_plateau_patience, cooldown.dtype))
    return opt_state, float(cut)
