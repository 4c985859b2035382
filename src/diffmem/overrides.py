"""``--set FIELD=VALUE``: configuration fields changed on the command line, each value parsed
by the type its field declares in ``diffmem.config`` (``diffmem train``, ``config``, ``bench``
and ``sweep`` use it).

    apply_sets(config, ["model.memory_rows=64", "train.lr_half_life=none"])
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from diffmem.config import Config, ConfigError, ModelConfig, TrainConfig, validate

SECTIONS = {"model": ModelConfig, "train": TrainConfig}
NONE = ("none", "null")  # what turns an optional field off


def _bool(raw: str) -> bool:
    if raw.lower() not in ("true", "false", "1", "0"):
        raise ValueError(raw)
    return raw.lower() in ("true", "1")


# A declared type: how a value is read as it, and what the error says was expected.
_PARSERS: dict[type, tuple[Callable[[str], Any], str]] = {
    bool: (_bool, "true or false"),
    int: (int, "an integer"),  # "1.5" is refused, not rounded
    float: (float, "a number"),  # "3" is read as 3.0
    str: (str, "text"),
}


def apply_sets(config: Config, assignments: Sequence[str]) -> Config:
    """``config`` with each ``section.field=value`` of ``assignments`` applied in order, then
    validated (``diffmem.config.validate``)."""
    for text in assignments:
        name, sep, raw = text.partition("=")
        section, _, field = name.strip().partition(".")
        hints = typing.get_type_hints(SECTIONS[section]) if section in SECTIONS else {}
        if not sep or field not in hints:
            known = [f"{s}.{f.name}" for s, c in SECTIONS.items() for f in dataclasses.fields(c)]
            raise ConfigError(f"--set {text!r} is not FIELD=VALUE with a known field; the "
                              "fields are: " + ", ".join(known))
        value = parse_value(text, raw.strip(), hints[field])
        config = config.replace(**{section: {field: value}})
    return validate(config)


def parse_value(text: str, raw: str, declared: Any) -> Any:
    """``raw`` read as the ``declared`` type of a field: ``bool``, ``int``, ``float``, ``str``
    or one of them ``| None`` (``none`` or ``null``: None). ``text`` is the whole ``--set``
    item, for the error message."""
    args = typing.get_args(declared)
    optional = (typing.get_origin(declared) in (typing.Union, types.UnionType)
                and type(None) in args)
    base = next((a for a in args if a is not type(None)), None) if optional else declared
    if (optional and len(args) != 2) or base not in _PARSERS:
        raise ConfigError(f"--set {text!r}: a field of type {declared} cannot be set from "
                          "the command line")
    if optional and raw.lower() in NONE:
        return None
    parse, expected = _PARSERS[base]
    try:
        return parse(raw)
    except ValueError:
        off = ", or none for off" if optional else ""
        raise ConfigError(f"--set {text!r}: {raw!r} is not valid here; expected {expected}"
                          f"{off}") from None
