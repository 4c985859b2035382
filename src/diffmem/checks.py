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


def check_input(x: Any, ndim: int, width: int, name: str) -> jax.Array:
    """Convert to a float32 array of ``ndim`` axes, (B, T, C_in) or (B, C_in), with ``width``
    channels last; raise ValueError saying what was expected and what was received."""
    x = jnp.asarray(x, dtype=jnp.float32)
    expected = "(B, T, C_in)" if ndim == 3 else "(B, C_in)"
    if x.ndim != ndim:
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
