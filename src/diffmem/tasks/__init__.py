"""Tasks by name: ``diffmem.tasks.get("copy")`` returns a ``Task``."""

from __future__ import annotations

from typing import Callable

from diffmem.tasks.base import Batch, Task
from diffmem.tasks.copy import Copy

_REGISTRY: dict[str, Callable[..., Task]] = {"copy": Copy}


def names() -> list[str]:
    """The registered task names."""
    return sorted(_REGISTRY)


def register(name: str, builder: Callable[..., Task]) -> None:
    """Make ``get(name)`` build a task with ``builder(**kwargs)``."""
    _REGISTRY[name] = builder


def get(name: str, **kwargs) -> Task:
    """Build the task registered as ``name``; keyword arguments go to its constructor."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown task {name!r}; the tasks are: {', '.join(names())}")
    return _REGISTRY[name](**kwargs)


__all__ = ["Batch", "Copy", "Task", "get", "names", "register"]
