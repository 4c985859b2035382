"""Tasks by name: ``diffmem.tasks.get("copy")`` returns a ``Task``."""

from __future__ import annotations

from collections.abc import Callable

from diffmem.tasks.associative_recall import AssociativeRecall
from diffmem.tasks.base import Batch, Task
from diffmem.tasks.copy import Copy
from diffmem.tasks.ngrams import DynamicNGrams
from diffmem.tasks.priority_sort import PrioritySort
from diffmem.tasks.repeat_copy import RepeatCopy

# In the paper's order (section 4).
_REGISTRY: dict[str, Callable[..., Task]] = {
    "copy": Copy,
    "repeat-copy": RepeatCopy,
    "associative-recall": AssociativeRecall,
    "dynamic-ngrams": DynamicNGrams,
    "priority-sort": PrioritySort,
}


def names() -> list[str]:
    """The registered task names, the paper's five first, in the paper's order."""
    return list(_REGISTRY)


def register(name: str, builder: Callable[..., Task]) -> None:
    """Make ``get(name)`` build a task with ``builder(**kwargs)``."""
    _REGISTRY[name] = builder


def get(name: str, **kwargs) -> Task:
    """Build the task registered as ``name``; keyword arguments go to its constructor."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown task {name!r}; the tasks are: {', '.join(names())}")
    return _REGISTRY[name](**kwargs)


__all__ = ["AssociativeRecall", "Batch", "Copy", "DynamicNGrams", "PrioritySort", "RepeatCopy",
           "Task", "get", "names", "register"]
