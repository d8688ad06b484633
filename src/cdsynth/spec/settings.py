"""Typed settings: a dataclass field that carries its bounds and help text, and the check that enforces them.

Every settings class of the spec layer (`Protocol`, `Scoring`, `Mixture`, `Architecture`, `TrainSettings`,
`Evaluation`) declares its fields with `setting(...)`, so a field's bound is written once: the class checks
it (`bound_problems`), the `cdsynth` command line takes its help text and choices from it, and
tests/spec/test_settings.py proves the config schema states the same bound, field by field. Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, Field, field, fields
from typing import Any

from cdsynth.errors import ConfigError

# A model's precision while it generates or is scored.
DTYPES = ("float32", "bfloat16")


def setting(
    default: Any = MISSING,
    *,
    help: str = "",
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    maximum: float | None = None,
    exclusive_maximum: float | None = None,
    choices: tuple[Any, ...] | None = None,
    whole: bool = False,
    also: tuple[Any, ...] = (),
    many: bool = False,
) -> Any:
    """A dataclass field with its bounds: `whole` numbers only, `choices` (with `many`, a list of distinct
    choices), and `also` values (e.g. None, "auto") accepted besides the bounded ones."""
    bounds = {
        "minimum": minimum,
        "exclusive_minimum": exclusive_minimum,
        "maximum": maximum,
        "exclusive_maximum": exclusive_maximum,
    }
    metadata = {
        "help": help,
        "bounds": {key: value for key, value in bounds.items() if value is not None},
        "choices": choices,
        "whole": whole,
        "also": also,
        "many": many,
    }
    return field(default=default, metadata=metadata)


def _interval(bounds: dict[str, float]) -> str:
    """The allowed range in words: ">= 1", "in (0, 1)", "<= 0"."""
    low = ("(", bounds["exclusive_minimum"]) if "exclusive_minimum" in bounds else None
    low = ("[", bounds["minimum"]) if "minimum" in bounds else low
    high = (")", bounds["exclusive_maximum"]) if "exclusive_maximum" in bounds else None
    high = ("]", bounds["maximum"]) if "maximum" in bounds else high
    if low and high:
        return f"in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
    if low:
        return f"{'>' if low[0] == '(' else '>='} {low[1]:g}"
    return f"{'<' if high[0] == ')' else '<='} {high[1]:g}"


def value_problem(spec: Field, value: Any) -> str | None:
    """Why `value` breaks the field's bounds, or None."""
    meta = spec.metadata
    if not meta or value in meta["also"] and not isinstance(value, bool):
        return None
    name = spec.name
    if meta["many"]:
        return _many_problem(name, value, meta["choices"])
    if meta["choices"] is not None:
        return (
            None
            if value in meta["choices"]
            else f"{name}: {value!r} is not one of " + ", ".join(map(str, meta["choices"]))
        )
    bounds = meta["bounds"]
    if meta["whole"] and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{name}: {value!r} must be a whole number"
    if not bounds:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name}: {value!r} must be a number"
    checks = {
        "minimum": lambda bound: value >= bound,
        "exclusive_minimum": lambda bound: value > bound,
        "maximum": lambda bound: value <= bound,
        "exclusive_maximum": lambda bound: value < bound,
    }
    inside = not math.isnan(value) and all(checks[kind](bound) for kind, bound in bounds.items())
    return None if inside else f"{name}: {value} must be {_interval(bounds)}"


def _many_problem(name: str, values: Any, choices: tuple[Any, ...]) -> str | None:
    """Why `values` is not a list of distinct `choices`, or None."""
    if not isinstance(values, list | tuple):
        return f"{name}: {values!r} must be a list"
    unknown = [value for value in values if value not in choices]
    if unknown:
        return f"{name}: {unknown[0]!r} is not one of " + ", ".join(map(str, choices))
    if len(set(values)) < len(values):
        return f"{name}: {list(values)} names one value twice"
    return None


def bound_problems(settings: Any) -> list[str]:
    """One line per field of a settings dataclass whose value breaks its declared bounds."""
    problems = (value_problem(spec, getattr(settings, spec.name)) for spec in fields(settings))
    return [line for line in problems if line is not None]


def help_of(cls: type, name: str) -> str:
    """A field's help text, for the command line."""
    return next(spec.metadata.get("help", "") for spec in fields(cls) if spec.name == name)


def problems_of(build: Callable[[], Any]) -> list[str]:
    """The lines of the ConfigError that building a settings object raises (none if it builds), for
    callers that gather every problem before refusing."""
    try:
        build()
    except ConfigError as err:
        return [line.strip() for line in str(err).splitlines()[1:]]
    return []
