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
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return decode(inner, value, path, where)
    if is_dataclass(kind):
        return _decode_dataclass(kind, _expect(value, dict, "an object", path, where), path, where)
    if origin is list:
        items = _expect(value, list, "a list", path, where)
        return [decode(args[0], item, f"{path}[{i}]", where) for i, item in enumerate(items)]
    if origin is dict:
        items = _expect(value, dict, "an object", path, where)
        return {key: decode(args[1], item, f"{path}.{key}", where) for key, item in items.items()}
    if kind is Any:
        return value  # free-form (metrics): JSON parsing already refused NaN and infinity
    if kind not in SCALARS:
        raise TypeError(f"no decoder for {kind!r}")  # a programming error in the dataclasses above
    accepts, expected = SCALARS[kind]
    if not accepts(value):
        raise _bad(value, expected, path, where)
    return float(value) if kind is float else value


def _decode_dataclass(kind: Any, value: dict, path: str, where: str | Path) -> Any:
    hints = typing.get_type_hints(kind)
    known = {f.name: f for f in fields(kind)}
    unknown = sorted(set(value) - known.keys())
    if unknown:
        raise ArtifactError(f"{where}: unknown field(s) {unknown} in '{path or '<root>'}'. Re-export the artifact.")
    decoded = {}
    for name, f in known.items():
        child = f"{path}.{name}" if path else name
        if name in value:
            decoded[name] = decode(hints[name], value[name], child, where)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ArtifactError(f"{where}: required field '{child}' is missing. Re-export the artifact.")
    return kind(**decoded)


def _expect(value: Any, json_type: type, expected: str, path: str, where: str | Path) -> Any:
    if not isinstance(value, json_type):
        raise _bad(value, expected, path, where)
    return value


def _bad(value: Any, expected: str, path: str, where: str | Path) -> ArtifactError:
    return ArtifactError(
        f"{where}: field '{path or '<root>'}' must be {expected}, got {type(value).__name__} "
        f"{_preview(value)}. Re-export the artifact."
    )


def is_finite_number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


# scalar type -> (what JSON values it accepts, how the error names it); bool is not an int here
SCALARS: dict[type, tuple[Any, str]] = {
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (is_finite_number, "a finite number"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a manifest may hold")


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
