"""Typed, validated config fields: what the config's sections (sections.py) are built on.

A `Section` checks each field's declared type and its `rules` whenever it is built; `parse`
reads a command-line value (`model.depth=8`) as a field's type. A bad value is a `ConfigError`
naming the field, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import ClassVar


class ConfigError(ValueError):
    """A config field holds a value of the wrong type or outside its allowed range."""


class Section:
    """A config section: after construction, every field is checked against its declared type
    and against the section's `rules` (field -> (predicate, what is allowed))."""

    section: ClassVar[str] = ""
    rules: ClassVar[dict] = {}

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _typed(getattr(self, f.name), hints[f.name], f"{self.section}.{f.name}")
            object.__setattr__(self, f.name, value)  # an int given for a float becomes a float
        for key, (ok, allowed) in self.rules.items():
            value = getattr(self, key)
            if not ok(value, self):
                raise ConfigError(f"{self.section}.{key}={value!r} is not allowed: must be {allowed}")


def _typed(value, tp, key: str):
    """`value` if it has type `tp` (int, float, bool, str, or Optional of those), an int as a
    float for a float field; else a ConfigError. Floats must be finite."""
    if typing.get_origin(tp) is typing.Union:
        if value is None:
            return None
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"{key}={value!r} is a {type(value).__name__}, expected {tp.__name__}")
    if tp is float and not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} is not allowed: must be a finite number")
    return value


def choice(names):
    return (lambda v, c: v in names), "one of " + ", ".join(map(str, names))


def at_least(low, what="an integer"):
    return (lambda v, c: v >= low), f"{what} >= {low}"


def from_to(low, high):
    """An integer in [low, high]: the upper bound keeps a hostile or mistyped config (a
    checkpoint's config.json from elsewhere) from asking for terabytes before any check."""
    return (lambda v, c: low <= v <= high), f"an integer from {low} to {high:,}"


def between(low, high):
    return (lambda v, c: low <= v <= high), f"a number in [{low}, {high}]"


POSITIVE = (lambda v, c: v > 0), "a number > 0"
INT_LIST = ((lambda v, c: all(p.strip().isdigit() and int(p) > 0 for p in v.split(","))),
            "comma-separated positive integers, e.g. 16,32,64")


def parse(raw: str, tp, key: str):
    """Parse `raw` as type `tp` (int, float, bool, str or Optional of those)."""
    if typing.get_origin(tp) is typing.Union:
        if raw.lower() in ("none", "null", ""):
            return None
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    try:
        if tp is bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if tp is int:
            return int(float(raw)) if "e" in raw.lower() else int(raw)
        return tp(raw)
    except ValueError:
        raise ValueError(f"{key}={raw!r} is not a valid {tp.__name__}") from None
