"""Argument checks shared by the public functions. Messages name the argument, the bad value and
what is accepted."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any


def is_integer(value: Any) -> bool:
    """True for any integral scalar (``int``, numpy integers, ...) but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive_int(value: Any, name: str, *, allow_zero: bool = False) -> int:
    """``value`` as an int, if it is an integral scalar (``int``, ``np.int64``, ...; not a bool)
    > 0 (>= 0 with ``allow_zero``)."""
    lowest = 0 if allow_zero else 1
    if not is_integer(value) or value < lowest:
        kind = "a non-negative integer" if allow_zero else "a positive integer"
        raise ValueError(f"Expected {name} to be {kind} but got {value!r}")
    return int(value)


def check_optional_positive_int(value: Any, name: str) -> int | None:
    return None if value is None else check_positive_int(value, name)


def check_positive_number(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a float, if it is a finite real scalar (``float``, ``np.float32``, ...; not a
    bool) > 0 (>= 0 with ``allow_zero``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
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


def check_model(model: Any, name: str = "model") -> None:
    """Raise unless ``model`` is a ``torch.nn.Module`` whose parameters and buffers hold data (a
    model built on the ``meta`` device has shapes only)."""
    from torch import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected {name} to be a torch.nn.Module but got {type(model).__name__}")
    check_materialised(model, name)
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.is_meta for t in tensors):
        raise ValueError(
            f"Expected {name} to hold its weights but {type(model).__name__} has tensors on the "
            "'meta' device (shapes without data): materialise it first, e.g. "
            "model.to_empty(device='cpu') then initialise or load_state_dict(...)"
        )


def lazy_tensor_names(model: Any) -> list[str]:
    """Names of the parameters and buffers of ``model`` that lazy modules (``nn.LazyLinear``,
    ``nn.LazyConv2d``, ...) have not materialised yet: they get their shapes from the first batch
    the model runs on."""
    from torch.nn.parameter import is_lazy

    named = [*model.named_parameters(), *model.named_buffers()]
    return [n for n, t in named if is_lazy(t)]


def check_materialised(model: Any, name: str = "model") -> None:
    """Raise ``ValueError`` when ``model`` has lazy parameters or buffers not materialised yet."""
    lazy = lazy_tensor_names(model)
    if lazy:
        shown = ", ".join(lazy[:3]) + (f", ... ({len(lazy) - 3} more)" if len(lazy) > 3 else "")
        raise ValueError(
            f"Expected {name} to have materialised parameters but {type(model).__name__} has "
            f"lazy ones without a shape yet ({shown}): run one batch through it first, e.g. "
            f"{name}(x), so that its lazy modules take their shapes"
        )
