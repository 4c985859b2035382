"""A memory model's one-step cell run over a whole sequence, shared by the NTM and the DNC."""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp

# How many models a trace computes side by side: a population's members are vmapped, so each
# sees its own batch while the compiled program holds all of them (diffmem.training.population).
_MEMBERS = contextvars.ContextVar("members", default=1)


@contextlib.contextmanager
def members(count: int) -> Iterator[None]:
    """Trace the models inside as ``count`` vmapped members, for the choice of rematerialising."""
    token = _MEMBERS.set(count)
    try:
        yield
    finally:
        _MEMBERS.reset(token)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def clip_gradient(tree: Any, bound: float) -> Any:
    """The identity, whose gradient is clipped elementwise to [-bound, bound] on its way back."""
    return tree


def _clip_gradient_fwd(tree: Any, bound: float) -> tuple[Any, None]:
    return tree, None


def _clip_gradient_bwd(bound: float, _: None, g: Any) -> tuple[Any]:
    return (jax.tree.map(lambda t: jnp.clip(t, -bound, bound), g),)


clip_gradient.defvjp(_clip_gradient_fwd, _clip_gradient_bwd)


def check_state_grad_clip(bound: float | None) -> float | None:
    """``bound`` for ``scan_steps``'s ``state_grad_clip``, refused unless positive or None."""
    if bound is not None and not bound > 0:
        raise ValueError(f"state_grad_clip={bound!r} must be a positive number or None (off)")
    return bound


def scan_steps(step: Callable, state: Any, inputs: jax.Array, return_trace: bool,
               state_grad_clip: float | None = None):
    """Run ``step(state, x_t) -> (state, y_t, trace_t)`` over ``inputs`` (B, T, C_in) with
    ``jax.lax.scan``.

    With ``state_grad_clip``, the gradient that flows back into the recurrent state is clipped
    elementwise to that bound at every step, so that a backward pass whose gradient grows
    step after step (an unstable stretch of the forward dynamics) stays finite and cannot
    swamp the rest of the batch's gradient; the forward pass is unchanged.

    Returns ``(logits (B, T, C_out), final state, trace)``, the trace's arrays (B, T, ...), or
    None without ``return_trace``.
    """
    if inputs.shape[0] * _MEMBERS.get() > 1:
        # Rematerialise each step in the backward pass, keeping only the controller's matrix
        # products: storing every step's (B, N, M) intermediates costs more than recomputing
        # them. Measured on a 2-core CPU (NTM, copy, T = 41): batch 16 forward + backward 59 ms
        # without, 25 ms with; at batch 1 it does not pay (3.2 ms without, 4.4 ms with). The
        # members of a population count as a batch.
        policy = jax.checkpoint_policies.dots_with_no_batch_dims_saveable
        if _MEMBERS.get() > 1:
            # vmap gives the members' weight products a batch dimension, which the policy
            # above reads as memory-sized and recomputes; keeping every product is faster
            # there (docs/throughput.md).
            policy = jax.checkpoint_policies.dots_saveable
        step = jax.checkpoint(step, policy=policy)

    def body(state, x_t):
        if state_grad_clip is not None:
            state = clip_gradient(state, state_grad_clip)
        state, y_t, trace_t = step(state, x_t)
        return state, (y_t, trace_t if return_trace else None)

    state, (ys, trace) = jax.lax.scan(body, state, jnp.swapaxes(inputs, 0, 1))
    if return_trace:
        trace = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), trace)
    return jnp.swapaxes(ys, 0, 1), state, trace
