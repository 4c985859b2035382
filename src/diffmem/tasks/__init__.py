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


# What every task must have, and what each is for (named when a task lacks it).
_REQUIRED = {
    "name": "the name it is shown and saved under",
    "input_size": "the width C_in of its input vectors",
    "output_size": "the width C_out of its output vectors",
    "eval_sizes": "the sizes `diffmem eval` measures by default",
    "target_bits": "the bits per sequence below which it counts as learned, or None with "
                   "target_bits_above_optimum for a task judged against its optimum",
    "optimal_bits": "the optimal predictor's bits per sequence, which "
                    "target_bits_above_optimum counts from",
    "sample": "the method that draws a batch",
}
_METHODS = ("sample", "optimal_bits")  # implemented, where the rest are defined
# Set by the built-in tasks' constructors from their arguments (bits=8 and the like), so a
# class can only be checked for them once it is built.
_PER_TASK = ("input_size", "output_size")


def register(name: str, builder: Callable[..., Task]) -> None:
    """Make ``get(name)`` build a task with ``builder(**kwargs)``.

    A task that lacks what every task needs (``name``, ``input_size``, ``output_size``,
    ``eval_sizes``, ``target_bits`` or else ``target_bits_above_optimum`` with
    ``optimal_bits``, and ``sample``) is refused with a ValueError that names what it lacks: a
    ``Task`` subclass here, but for the sizes that its constructor may set, and every task
    when ``get`` builds it.
    """
    if isinstance(builder, type) and issubclass(builder, Task):
        lacking = _lacking(builder, skip=_PER_TASK)
        if lacking:
            raise ValueError(f"task class {builder.__name__} cannot be registered as {name!r}: "
                             f"{_missing(lacking, built=False)}")
    _REGISTRY[name] = builder


def get(name: str, **kwargs) -> Task:
    """Build the task registered as ``name``; keyword arguments go to its constructor."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown task {name!r}; the tasks are: {', '.join(names())}")
    task = _REGISTRY[name](**kwargs)
    lacking = _lacking(task)
    if lacking:
        raise ValueError(f"task {name!r} (class {type(task).__name__}) cannot be used: "
                         f"{_missing(lacking, built=True)}")
    return task


def _lacking(task: Task | type[Task], skip: tuple[str, ...] = ()) -> list[str]:
    """The names in ``_REQUIRED`` that ``task`` (a class or a built task) lacks: an attribute
    that is absent, None or abstract, a method not implemented."""
    cls = task if isinstance(task, type) else type(task)

    def absent(attr: str) -> bool:
        value = getattr(task, attr, None)
        return value is None or getattr(value, "__isabstractmethod__", False)

    lacking = [a for a in ("name", "input_size", "output_size", "eval_sizes")
               if a not in skip and absent(a)]
    if absent("target_bits"):
        if absent("target_bits_above_optimum"):
            lacking.append("target_bits")
        elif getattr(cls, "optimal_bits", None) in (None, Task.optimal_bits):
            lacking.append("optimal_bits")
    if not callable(getattr(task, "sample", None)) or absent("sample"):
        lacking.append("sample")
    return lacking


def _missing(lacking: list[str], built: bool) -> str:
    """What a task lacks and what to do: "it lacks eval_sizes (the sizes ...); define it as a
    class attribute" (for a class; for a ``built`` task, set it in its class or __init__)."""
    what = [f"{a} ({_REQUIRED[a]})" for a in lacking]
    text = "it lacks " + (", ".join(what[:-1]) + " and " if len(what) > 1 else "") + what[-1]
    attrs = [a for a in lacking if a not in _METHODS]
    todo = [f"implement {m}" for m in lacking if m in _METHODS]
    if attrs:
        it = "it" if len(attrs) == 1 else "them"
        todo.insert(0, f"set {it} in its class or its __init__" if built else
                    f"define {it} as a class attribute" if len(attrs) == 1 else
                    "define them as class attributes")
    return f"{text}; {', '.join(todo)}"


__all__ = ["AssociativeRecall", "Batch", "Copy", "DynamicNGrams", "PrioritySort", "RepeatCopy",
           "Task", "get", "names", "register"]
