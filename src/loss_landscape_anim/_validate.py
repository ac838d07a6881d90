"""Argument checks shared by the public functions. Messages name the argument, the bad value and
what is accepted."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def check_positive_int(value: Any, name: str, *, allow_zero: bool = False) -> int:
    """``value`` as an int, if it is an integer > 0 (>= 0 with ``allow_zero``)."""
    lowest = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
        kind = "a non-negative integer" if allow_zero else "a positive integer"
        raise ValueError(f"Expected {name} to be {kind} but got {value!r}")
    return int(value)


def check_optional_positive_int(value: Any, name: str) -> int | None:
    return None if value is None else check_positive_int(value, name)


def check_positive_number(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a float, if it is a finite real number > 0 (>= 0 with ``allow_zero``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        kind = "a finite number >= 0" if allow_zero else "a finite number > 0"
        raise ValueError(f"Expected {name} to be {kind} but got {value!r}")
    return float(value)


def check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    """``value`` lower-cased, if it is one of ``choices``."""
    choices = tuple(choices)
    if not isinstance(value, str) or value.lower() not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"Expected {name} to be one of {listed} but got {value!r}")
    return value.lower()
