"""Checks shared by the stage configs (train/config.py, export/config.py, bench): each raises an InputError
that names the CLI flag, so a config object fails the same way from Python and from the command line."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from .errors import InputError


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def choice(config: Any, name: str, allowed: tuple[str, ...]) -> None:
    if getattr(config, name) not in allowed:
        raise InputError(f"{flag(name)} must be one of {list(allowed)}, got '{getattr(config, name)}'.")


def positive(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise InputError(f"{flag(name)} must be positive, got {value!r}.")


def known_keys(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"{where} has unknown keys {unknown}; known keys: {sorted(names)}.")
    return values
