"""The one family of validators of the campaign file and of the flags that override it.

Each checks one value and returns it converted, or raises :class:`UsageError` whose message
starts with ``where`` (``FILE: section.key`` for the file, ``--flag`` for a flag)::

    >>> check(Key("users", "int", low=1), 300, "load.users")
    300
    >>> check(Key("duration_s", "duration"), "2m", "campaign.duration")
    120.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import UsageError
from harness.units import parse_duration_s, parse_share


@dataclass(frozen=True)
class Key:
    """One key of the campaign file: the field it sets, its kind and its limits.

    Kinds: ``str``, ``bool``, ``duration`` (seconds), ``int``, ``float``, ``share`` (a fraction
    or a percentage), ``choice`` (one of ``choices``), ``choices`` (a list of them),
    ``names`` (a list of Python identifiers), ``numbers`` (a table of names to numbers),
    ``table`` (passed on as read, checked by its stage).
    """

    field: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    what: str = "value"  # what a value is, in messages ("unknown shape 'zigzag'")


def check(key: Key, value: Any, where: str) -> Any:
    """``value`` checked and converted as ``key`` says."""
    kind = key.kind
    if kind == "str":
        if not isinstance(value, str):
            raise UsageError(f"{where}: expected a string, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind == "duration":
        return _limits(key, parse_duration_s(value, where), where, unit=" s")
    if kind == "int":
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)  # a flag or an environment variable
        if not isinstance(value, int) or isinstance(value, bool):
            raise UsageError(f"{where}: expected an integer, got {value!r}")
        return _limits(key, value, where)
    if kind == "float":
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise UsageError(f"{where}: expected a number, got {value!r}") from None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise UsageError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise UsageError(f"{where}: expected a finite number, got {value!r}")
        return _limits(key, float(value), where)
    if kind == "share":
        return _limits(key, parse_share(value, where), where)
    if kind == "choice":
        if value not in key.choices:
            named = ", ".join(c for c in key.choices if c)
            raise UsageError(f"{where}: unknown {key.what} {value!r}; expected one of {named}")
        return value
    if kind == "choices":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(v in key.choices for v in value):
            raise UsageError(f"{where}: expected a list of {', '.join(key.choices)}")
        return tuple(value)
    if kind == "names":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(
            isinstance(v, str) and v.isidentifier() for v in value
        ):
            raise UsageError(f"{where}: expected a list of class names, got {value!r}")
        return tuple(value)
    if kind == "numbers":
        if not isinstance(value, Mapping):
            raise UsageError(f"{where}: expected a table of numbers")
        out = {}
        for k, v in value.items():
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                raise UsageError(f"{where}.{k}: expected a number, got {v!r}")
            out[str(k)] = float(v)
        return out
    if kind == "table":
        return value
    raise AssertionError(kind)


def _limits(key: Key, value: float, where: str, unit: str = "") -> Any:
    if key.low is not None and value < key.low:
        raise UsageError(
            f"{where}: {_number(value)}{unit} is out of range (at least {_number(key.low)}{unit})"
        )
    if key.high is not None and value > key.high:
        raise UsageError(
            f"{where}: {_number(value)}{unit} is out of range (at most {_number(key.high)}{unit})"
        )
    return value


def _number(value: float) -> str:
    """``1000000`` as written, not ``1e+06``; ``1e+308`` and ``0.05`` as they are."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{value:.0f}"
    return f"{value:g}"
