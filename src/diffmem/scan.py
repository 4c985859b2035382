"""A memory model's one-step cell run over a whole sequence, shared by the NTM and the DNC."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp

# How many models a trace computes side by side: a population's members are vmapped, so each
# sees its own batch while the compiled program holds all of them (diffmem.population).
_MEMBERS = contextvars.ContextVar("members", default=1)


@contextlib.contextmanager
def members(count: int) -> Iterator[None]:
    """Trace the models inside as ``count`` vmapped members, for the choice of rematerialising."""
    token = _MEMBERS.set(count)
    try:
        yield
    finally:
        _MEMBERS.reset(token)


def scan_steps(step: Callable, state: Any, inputs: jax.Array, return_trace: bool):
    """Run ``step(state, x_t) -> (state, y_t, trace_t)`` over ``inputs`` (B, T, C_in) with
    ``jax.lax.scan``.

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
        state, y_t, trace_t = step(state, x_t)
        return state, (y_t, trace_t if return_trace else None)

    state, (ys, trace) = jax.lax.scan(body, state, jnp.swapaxes(inputs, 0, 1))
    if return_trace:
        trace = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), trace)
    return jnp.swapaxes(ys, 0, 1), state, trace
