"""A memory model's one-step cell run over a whole sequence, shared by the NTM, the DNC and the
LSTM baseline: per-sequence lengths, the choice of rematerialising, and a clipped state
gradient."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

# The ``jax.checkpoint_policies`` a layer's ``remat`` may name: what each rematerialised step
# keeps for the backward pass (the rest it recomputes).
REMAT_POLICIES = ("dots_with_no_batch_dims_saveable", "dots_saveable", "nothing_saveable",
                  "everything_saveable")


def check_remat(remat: str | None | bool) -> str | None:
    """``remat`` for ``scan_steps``, refused unless "auto", None/False (off) or a policy name of
    ``REMAT_POLICIES``."""
    if remat is False or remat is None:
        return None
    if remat != "auto" and remat not in REMAT_POLICIES:
        raise ValueError(f"remat={remat!r} must be 'auto', None (off) or one of the "
                         f"jax.checkpoint_policies {', '.join(REMAT_POLICIES)}")
    return remat


def remat_policy(remat: str | None, batch_size: int) -> Callable | None:
    """The ``jax.checkpoint`` policy each step is rematerialised with, None for not at all.

    "auto" rematerialises at batch > 1, keeping only the controller's matrix products:
    storing every step's (B, N, M) intermediates costs more than recomputing them. Measured on
    a 2-core CPU (NTM, copy, T = 41): batch 16 forward + backward 59 ms without, 25 ms with; at
    batch 1 it does not pay (3.2 ms without, 4.4 ms with). Models vmapped side by side (a
    population, ``diffmem.training.population``) take "dots_saveable" instead: vmap gives their
    weight products a batch dimension, which "auto"'s policy reads as memory-sized and
    recomputes; keeping every product is faster there (docs/throughput.md).
    """
    if remat == "auto":
        remat = "dots_with_no_batch_dims_saveable" if batch_size > 1 else None
    return None if remat is None else getattr(jax.checkpoint_policies, remat)


# "auto" chunks a scan whose carried state is at least this large: below it, keeping every
# step's state costs less than the extra forward pass. On a 2-core CPU (DNC, W = 64, R = 4,
# T = 41, batch 16; results/dnc-scale/chunks.json), chunks of 7 steps planned 162 MB instead of
# 280 MB for an update at N = 256 and took 517 ms instead of 590; at N = 1,024, 1.48 GB
# instead of 3.41 GB in the same time.
CHUNK_FROM_BYTES = 4 * 2**20


def check_chunk(chunk: int | str | None) -> int | str | None:
    """``chunk`` for ``scan_steps``, refused unless "auto", None (off) or a positive integer."""
    if chunk is None or chunk == "auto" or (isinstance(chunk, int)
                                            and not isinstance(chunk, bool) and chunk >= 1):
        return chunk
    raise ValueError(f"remat_chunk={chunk!r} must be 'auto', None (off) or a positive number "
                     "of steps")


def chunk_steps(chunk: int | str | None, state: Any, steps: int) -> int | None:
    """The steps per rematerialised chunk (``chunked_scan``), None for none: ``chunk`` itself,
    or for "auto" about sqrt(T) (the fewest states kept) where the carried state is
    ``CHUNK_FROM_BYTES`` or more."""
    if chunk != "auto":
        return chunk
    size = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(state))
    return math.ceil(math.sqrt(steps)) if size >= CHUNK_FROM_BYTES else None


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def clip_gradient(tree: Any, bound: float) -> Any:
    """The identity, whose gradient is clipped elementwise to [-bound, bound] on its way back."""
    return tree


def _clip_gradient_fwd(tree: Any, bound: float) -> tuple[Any, None]:
    return tree, None


def _clip_gradient_bwd(bound: float, _: None, g: Any) -> tuple[Any]:
    # Integer leaves (a sparse link's indices) have float0 cotangents, passed on as they are.
    def clip(t):
        return t if t.dtype == jax.dtypes.float0 else jnp.clip(t, -bound, bound)
    return (jax.tree.map(clip, g),)


clip_gradient.defvjp(_clip_gradient_fwd, _clip_gradient_bwd)


def check_state_grad_clip(bound: float | None) -> float | None:
    """``bound`` for ``scan_steps``'s ``state_grad_clip``, refused unless positive or None."""
    if bound is not None and not bound > 0:
        raise ValueError(f"state_grad_clip={bound!r} must be a positive number or None (off)")
    return bound


def where_live(live: jax.Array, new: Any, old: Any) -> Any:
    """``new`` for the sequences whose ``live`` (B,) holds, ``old`` for the others, leaf by
    leaf ((B, ...) each)."""
    def pick(a, b):
        return jnp.where(live.reshape(live.shape + (1,) * (a.ndim - 1)), a, b)
    return jax.tree.map(pick, new, old)


def scan_steps(step: Callable, state: Any, inputs: jax.Array, return_trace: bool,
               state_grad_clip: float | None = None, *, remat: str | None = "auto",
               seq_lengths: jax.Array | None = None, chunk: int | str | None = None):
    """Run ``step(state, x_t) -> (state, y_t, trace_t)`` over ``inputs`` (B, T, C_in) with
    ``jax.lax.scan``.

    With ``seq_lengths`` (B,), sequence b's state stops changing after its first
    ``seq_lengths[b]`` steps, and its outputs (and trace) after them are zeros: the final state
    is the state after its own last step. A ``where`` on the carried state at every step does
    it; no step's state is stored.

    ``remat`` chooses how each step is rematerialised in the backward pass (``remat_policy``),
    and ``chunk`` whether runs of steps are as well (``chunk_steps``, ``chunked_scan``).

    With ``state_grad_clip``, the gradient that flows back into the recurrent state is clipped
    elementwise to that bound at every step, so that a backward pass whose gradient grows
    step after step (an unstable stretch of the forward dynamics) stays finite and cannot
    swamp the rest of the batch's gradient; the forward pass is unchanged.

    Returns ``(outputs (B, T, C_out), final state, trace)``, the trace's arrays (B, T, ...),
    or None without ``return_trace``.
    """
    chunk = chunk_steps(chunk, state, inputs.shape[1])
    if chunk is not None and chunk >= inputs.shape[1]:
        chunk = None  # one chunk of every step: a plain scan
    # Chunks bound the memory already: "auto" then keeps every step's intermediates within
    # a chunk rather than recomputing them a second time.
    policy = remat_policy(None if chunk is not None and remat == "auto" else remat,
                          inputs.shape[0])
    if policy is not None:
        step = jax.checkpoint(step, policy=policy)

    def body(state, xs):
        x_t, t = xs if seq_lengths is not None else (xs, None)
        if state_grad_clip is not None:
            state = clip_gradient(state, state_grad_clip)
        new, y_t, trace_t = step(state, x_t)
        out = (y_t, trace_t if return_trace else None)
        if seq_lengths is not None:
            live = t < seq_lengths  # (B,)
            new = where_live(live, new, state)
            out = where_live(live, out, jax.tree.map(jnp.zeros_like, out))
        return new, out

    xs = jnp.swapaxes(inputs, 0, 1)
    if seq_lengths is not None:
        xs = (xs, jnp.arange(inputs.shape[1]))
    if chunk is None:
        state, (ys, trace) = jax.lax.scan(body, state, xs)
    else:
        state, (ys, trace) = chunked_scan(body, state, xs, chunk)
    if return_trace:
        trace = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), trace)
    return jnp.swapaxes(ys, 0, 1), state, trace


def chunked_scan(body: Callable, state: Any, xs: Any, chunk: int) -> tuple[Any, Any]:
    """``jax.lax.scan(body, state, xs)`` in chunks of ``chunk`` steps, each rematerialised as a
    whole: the backward pass keeps the carried state at the start of every chunk and, while
    it goes back through one chunk, that chunk's steps, about T / chunk + chunk states in all
    instead of T, for one more forward pass. The last chunk may be shorter."""
    steps = jax.tree.leaves(xs)[0].shape[0]
    whole = steps // chunk * chunk
    run = jax.checkpoint(lambda s, part: jax.lax.scan(body, s, part))

    def split(a):
        return a[:whole].reshape((steps // chunk, chunk) + a.shape[1:])

    state, out = jax.lax.scan(run, state, jax.tree.map(split, xs))
    out = jax.tree.map(lambda a: a.reshape((whole,) + a.shape[2:]), out)
    if whole < steps:
        state, rest = run(state, jax.tree.map(lambda a: a[whole:], xs))
        out = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), out, rest)
    return state, out


def over_batch_axes(step: Callable, state: Any, x: jax.Array) -> tuple[Any, jax.Array]:
    """``step(state, x (B, C)) -> (state, y (B, C_out))`` on ``x`` (*B, C) of any number of
    batch axes, none included (flax.nnx's cell protocol): flattened to one axis and back."""
    batch = x.shape[:-1]
    if len(batch) == 1:
        return step(state, x)
    flat = lambda a: a.reshape((math.prod(batch),) + a.shape[len(batch):])  # noqa: E731
    unflat = lambda a: a.reshape(batch + a.shape[1:])  # noqa: E731
    state, y = step(jax.tree.map(flat, state), flat(x))
    return jax.tree.map(unflat, state), unflat(y)


def batched_state(initial_state: Callable[[int], Any], input_shape: tuple[int, ...]) -> Any:
    """``initial_state(B)`` for the batch axes ``input_shape[:-1]`` of a cell's input (any
    number of them, none included): flax.nnx's ``initialize_carry``."""
    batch = tuple(input_shape[:-1])
    state = initial_state(math.prod(batch))
    return jax.tree.map(lambda a: a.reshape(batch + a.shape[1:]), state)
