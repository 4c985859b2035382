"""Size and input checks shared by every model, with messages that say what to pass."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def check_sizes(**sizes: int) -> None:
    """Raise ValueError naming the first size that is not a positive integer."""
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer")


def check_input(x: Any, ndim: int | None, width: int, name: str,
                dtype: Any = jnp.float32) -> jax.Array:
    """Convert to an array of ``dtype`` (float32 unless the model's parameters are of another)
    of ``ndim`` axes, (B, T, C_in) or (B, C_in), or with ``ndim=None`` of any batch axes,
    (*B, C_in), with ``width`` channels last; raise ValueError saying what was expected and
    what was received."""
    x = jnp.asarray(x, dtype=dtype)
    expected = {3: "(B, T, C_in)", 2: "(B, C_in)", None: "(*B, C_in)"}[ndim]
    if x.ndim != ndim and not (ndim is None and x.ndim >= 1):
        raise ValueError(
            f"Expected {name} of shape {expected} = {expected.replace('C_in', str(width))}, "
            f"got a {x.ndim}D array of shape {tuple(x.shape)} instead"
        )
    if x.shape[-1] != width:
        raise ValueError(
            f"Expected {name} with {width} channels in the last axis (the model's input_size), "
            f"got {x.shape[-1]} (shape {tuple(x.shape)}); check that the task matches the model"
        )
    return x


def check_lengths(seq_lengths: Any, batch_size: int) -> jax.Array | None:
    """``seq_lengths`` as an integer array (B,), or None; raise ValueError naming what was
    expected and what was received."""
    if seq_lengths is None:
        return None
    lengths = jnp.asarray(seq_lengths)
    if lengths.shape != (batch_size,) or not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise ValueError(
            f"Expected seq_lengths of shape (B,) = ({batch_size},) of integers, one length per "
            f"sequence, got {lengths.dtype} of shape {tuple(lengths.shape)} instead")
    return lengths
