"""Typed JSON: decode parsed JSON into (nested) dataclasses, refusing wrong types, unknown fields, NaN and infinity,
with errors naming the field path. Used for the artifact manifest (core/artifact.py). Torch-free, numpy-free."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

from .errors import ArtifactError


def decode(kind: Any, value: Any, path: str, where: str | Path) -> Any:
    """`value` (parsed JSON) as an instance of `kind` (a type hint above); raises naming the field path."""

    def bad(expected: str) -> ArtifactError:
        return ArtifactError(
            f"{where}: field '{path or '<root>'}' must be {expected}, got {type(value).__name__} "
            f"{_preview(value)}. Re-export the artifact."
        )

    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return decode(inner, value, path, where)
    if is_dataclass(kind):
        if not isinstance(value, dict):
            raise bad("an object")
        hints = typing.get_type_hints(kind)
        known = {f.name: f for f in fields(kind)}
        unknown = sorted(set(value) - known.keys())
        if unknown:
            raise ArtifactError(f"{where}: unknown field(s) {unknown} in '{path or '<root>'}'. Re-export the artifact.")
        decoded = {}
        for name, f in known.items():
            child = f"{path}.{name}" if path else name
            if name not in value:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise ArtifactError(f"{where}: required field '{child}' is missing. Re-export the artifact.")
                continue
            decoded[name] = decode(hints[name], value[name], child, where)
        return kind(**decoded)
    if origin is list:
        if not isinstance(value, list):
            raise bad("a list")
        return [decode(args[0], item, f"{path}[{i}]", where) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad("an object")
        return {key: decode(args[1], item, f"{path}.{key}", where) for key, item in value.items()}
    if kind is Any:
        return value  # free-form (metrics): JSON parsing already refused NaN and infinity
    if kind is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad("an integer")
        return value
    if kind is float:
        if not is_finite_number(value):
            raise bad("a finite number")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    raise TypeError(f"no decoder for {kind!r}")  # a programming error in the dataclasses above


def is_finite_number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a manifest may hold")


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
