"""Tasks by name: ``diffmem.tasks.get("copy")`` returns a ``Task``.

Besides the registered names, ``get`` takes two kinds of task spec, which is what a run's
``Config.task`` holds:

- ``"module.path:Attr"``: ``Attr`` of a module on ``sys.path`` (``diffmem`` on the command
  line puts the current folder there, as ``python -m`` does), a ``Task`` subclass or a
  function returning a ``Task``: a task defined outside diffmem.
- ``"npz:PATH"``, with ``"?val_fraction=F"`` or ``"?val_data=PATH2"``: an ``ArrayTask`` over
  the arrays of an .npz file (``diffmem train --data``; docs/your-data.md).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

from diffmem.tasks import arrays
from diffmem.tasks.arrays import ArrayTask
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


# "package.module:Attr" (Attr may be dotted: "module:Class.factory").
_MODULE_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
# ArrayTasks built from files, by spec: (the files' stamp, the task). A file is read and
# checked once for as long as it is unchanged.
_BUILT: dict[str, tuple[tuple, Task]] = {}


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


def unregister(name: str) -> None:
    """Remove the task registered as ``name`` (for tests that register their own)."""
    if name not in _REGISTRY:
        raise ValueError(f"no task is registered as {name!r}; the tasks are: "
                         f"{', '.join(names())}")
    del _REGISTRY[name]


def get(name: str, **kwargs) -> Task:
    """Build the task registered as ``name``, or given by a task spec (``"module:Attr"`` or
    ``"npz:PATH"``, see above); keyword arguments go to its constructor. A task built from a
    file is built once while the file is unchanged (without keyword arguments)."""
    if name in _REGISTRY:
        task = _REGISTRY[name](**kwargs)
    elif name.startswith(arrays.PREFIX):
        return _from_file(name, kwargs)
    elif _MODULE_SPEC.fullmatch(name):
        task = _from_module(name, kwargs)
    else:
        raise ValueError(f"unknown task {name!r}; the tasks are: {', '.join(names())}; or "
                         "your own: MODULE:ATTR (a Task class or function in a module on the "
                         "path), or --data FILE.npz")
    lacking = _lacking(task)
    if lacking:
        raise ValueError(f"task {name!r} (class {type(task).__name__}) cannot be used: "
                         f"{_missing(lacking, built=True)}")
    return task


def _from_file(spec: str, kwargs: dict) -> Task:
    """The ArrayTask of a spec ``npz:PATH...``, from ``_BUILT`` while its files are unchanged."""
    options = arrays.parse_spec(spec)
    if kwargs:
        return ArrayTask(**{**options, **kwargs})
    stamp = arrays.stamp(options)
    built = _BUILT.get(spec)
    if built is not None and stamp is not None and built[0] == stamp:
        return built[1]
    task = ArrayTask(**options)
    _BUILT[spec] = (stamp, task)
    return task


def _from_module(spec: str, kwargs: dict) -> Task:
    """``Attr(**kwargs)`` of a spec ``module:Attr``: a Task subclass or a function returning a
    Task (or a Task itself)."""
    module_name, _, attr = spec.partition(":")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"task {spec!r}: cannot import {module_name} ({err}); run diffmem in "
                         "the folder that holds it, or add that folder to PYTHONPATH") from None
    except Exception as err:  # the module's own error: one line, not its traceback
        raise ValueError(f"task {spec!r}: importing {module_name} failed: "
                         f"{type(err).__name__}: {err}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"task {spec!r}: {module_name} has no {attr}; name a Task class "
                             "or a function returning a Task that it defines")
        obj = getattr(obj, part)
    if isinstance(obj, Task):
        return obj
    if isinstance(obj, type):
        if not issubclass(obj, Task):
            raise ValueError(f"task {spec!r}: {attr} is a class but not a diffmem.tasks.Task; "
                             "subclass Task")
        lacking = _lacking(obj, skip=_PER_TASK)
        if lacking:
            raise ValueError(f"task {spec!r} (class {obj.__name__}) cannot be used: "
                             f"{_missing(lacking, built=False)}")
    elif not callable(obj):
        raise ValueError(f"task {spec!r}: {attr} is a {type(obj).__name__}, not a Task class "
                         "or a function returning a Task")
    try:
        task = obj(**kwargs)
    except Exception as err:  # the user's constructor: one line, not its traceback
        raise ValueError(f"task {spec!r}: {attr}() failed: {type(err).__name__}: {err}") from None
    if not isinstance(task, Task):
        raise ValueError(f"task {spec!r}: {attr}() returned a {type(task).__name__}, not a "
                         "diffmem.tasks.Task")
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


__all__ = ["ArrayTask", "AssociativeRecall", "Batch", "Copy", "DynamicNGrams", "PrioritySort",
           "RepeatCopy", "Task", "get", "names", "register", "unregister"]
