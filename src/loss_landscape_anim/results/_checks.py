"""Checks the result types run when they are built, so that an inconsistent result (wrong shapes,
dtypes, non-finite weights) never exists: neither built by hand nor loaded from a damaged file.
Each raises ``ValueError`` or ``TypeError`` naming the field, what it holds and what is expected.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

#: Elements checked at once by :func:`check_finite`, so a large array needs no full-size mask.
_FINITE_BLOCK = 1 << 22


def array_field(
    value: Any,
    name: str,
    shape: tuple[int | None, ...],
    kind: str = "float",
) -> np.ndarray:
    """``value`` as an array of ``shape`` (None: any length) and ``kind`` (``"float"``,
    ``"int"`` or ``"bool"``); an array already of the right type is returned as is, not
    copied."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    wanted = {"float": np.floating, "int": np.integer, "bool": np.bool_}[kind]
    if not np.issubdtype(array.dtype, wanted):
        raise TypeError(f"Expected {name} to be an array of {kind}s but got dtype {array.dtype}")
    if array.ndim != len(shape) or any(
        n is not None and n != m for n, m in zip(shape, array.shape, strict=False)
    ):
        expected = "(" + ", ".join("n" if n is None else str(n) for n in shape)
        expected += ",)" if len(shape) == 1 else ")"
        raise ValueError(f"Expected {name} of shape {expected} but got {array.shape}")
    return array


def check_finite(array: np.ndarray, name: str, *, allow_nan: bool = False) -> None:
    """Raise ``ValueError`` when ``array`` holds infinities (or NaN, unless ``allow_nan``),
    reading it in blocks."""
    flat = array.reshape(-1) if array.flags.c_contiguous else np.ravel(array)
    for start in range(0, flat.size, _FINITE_BLOCK):
        block = flat[start : start + _FINITE_BLOCK]
        bad = np.isinf(block) if allow_nan else ~np.isfinite(block)
        if bad.any():
            where = start + int(np.argmax(bad))
            index = tuple(int(i) for i in np.unravel_index(where, array.shape))
            allowed = "finite or NaN" if allow_nan else "finite"
            raise ValueError(
                f"Expected {name} to be {allowed} but it holds {flat[where]} at "
                f"index {index if len(index) > 1 else index[0]}"
            )


def optional_number(value: Any, name: str, *, low: float = -math.inf, integer: bool = False) -> Any:
    """``value`` if it is None or a finite number >= ``low`` (an integer with ``integer``)."""
    if value is None:
        return None
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        what = "an integer" if integer else "a finite number"
        raise TypeError(f"Expected {name} to be None or {what} but got {value!r}")
    if value < low:
        raise ValueError(f"Expected {name} to be None or >= {low} but got {value!r}")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def optional_str(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"Expected {name} to be None or a string but got {value!r}")
    return value


def check_increasing(array: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` unless ``array`` (1-D) is strictly increasing."""
    if array.size > 1 and not bool(np.all(np.diff(array) > 0)):
        raise ValueError(f"Expected {name} to be strictly increasing but got {array}")


def check_independent(directions: np.ndarray) -> None:
    """Raise ``ValueError`` unless the two rows of ``directions`` (2, P) are non-zero and not
    parallel (they span a plane)."""
    gram = directions @ directions.T
    for k in range(2):
        if not gram[k, k] > 0:
            raise ValueError(f"Expected directions[{k}] to be non-zero but it is all zeros")
    if abs(np.linalg.det(gram)) <= 1e-12 * gram[0, 0] * gram[1, 1]:
        raise ValueError("Expected the two directions to span a plane but they are parallel")
