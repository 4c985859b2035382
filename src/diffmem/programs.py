"""The compiled programs of this process, kept by everything that shapes them.

Tracing, lowering and compiling a training update takes seconds; running it on a small batch
takes milliseconds. A notebook that trains the same configuration again, a local sweep's
runs, or a test suite would pay the seconds on every run, since each run builds its own
closures and ``jax.jit`` caches by function. ``programs.get(key, build)`` returns the program
built for an equal key before, so only the first pays. Keys hold what a program depends on:
hashable settings, a model's graph definition, and ``fingerprint``s of the arrays a program
holds as constants. The least recently used programs are dropped beyond ``SIZE``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import jax
import numpy as np

SIZE = 32  # a program holds its executable's memory; a few configurations' worth

_programs: OrderedDict[Hashable, Any] = OrderedDict()


def get(key: Hashable, build: Callable[[], Any]) -> Any:
    """The program kept under ``key``, or ``build()``'s, kept from now on."""
    if key in _programs:
        _programs.move_to_end(key)
        return _programs[key]
    program = build()
    _programs[key] = program
    while len(_programs) > SIZE:
        _programs.popitem(last=False)
    return program


def clear() -> None:
    """Forget every kept program (the next run of each configuration compiles again)."""
    _programs.clear()


def fingerprint(tree: Any) -> Hashable:
    """A hashable summary of ``tree``'s structure and of every array's shape, type and bytes:
    equal for trees a program cannot tell apart."""
    leaves, treedef = jax.tree.flatten(tree)
    summary = []
    for leaf in leaves:
        dtype = getattr(leaf, "dtype", None)
        if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        array = np.asarray(leaf)
        digest = hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16)
        summary.append((array.shape, array.dtype.str, digest.hexdigest()))
    return treedef, tuple(summary)


def shapes(tree: Any) -> Hashable:
    """A hashable summary of ``tree``'s structure and of every array's shape and type: what a
    compiled program takes as arguments."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((tuple(np.shape(x)), str(getattr(x, "dtype", type(x))))
                          for x in leaves)
