"""Optimizers by name, or a user's ``torch.optim`` class or factory."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ._validate import check_positive_number

__all__ = [
    "OPTIMIZERS",
    "OptimizerSpec",
    "build_optimizer",
    "make_optimizer",
    "optimizer_summary",
    "resolve_optimizer",
]

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
}

#: A name from :data:`OPTIMIZERS`, a ``torch.optim.Optimizer`` subclass, or a callable
#: ``factory(params, lr=...)`` returning an optimizer.
OptimizerSpec = str | type | Callable[..., torch.optim.Optimizer]


def check_optimizer_spec(spec: Any, name: str = "optimizer") -> OptimizerSpec:
    """``spec`` normalised (names lower-cased), or a ``ValueError`` listing the accepted names."""
    if isinstance(spec, str):
        if spec.lower() not in OPTIMIZERS:
            accepted = ", ".join(repr(k) for k in OPTIMIZERS)
            raise ValueError(
                f"Expected {name} to be one of {accepted}, a torch.optim.Optimizer class or a "
                f"factory but got {spec!r}"
            )
        return spec.lower()
    if callable(spec):
        return spec
    raise TypeError(
        f"Expected {name} to be an optimizer name, a torch.optim.Optimizer class or a factory "
        f"but got {type(spec).__name__}"
    )


def optimizer_name(spec: OptimizerSpec) -> str:
    """A short human name for ``spec`` (used in labels and legends)."""
    if isinstance(spec, str):
        return spec
    return getattr(spec, "__name__", type(spec).__name__).lower()


def make_optimizer(
    spec: OptimizerSpec,
    learning_rate: float,
    *,
    model: nn.Module | None = None,
    params: Iterable[torch.nn.Parameter] | None = None,
) -> torch.optim.Optimizer:
    """Build the optimizer ``spec`` with learning rate ``learning_rate`` over ``params`` (default:
    ``model.parameters()``)."""
    spec = check_optimizer_spec(spec)
    factory = OPTIMIZERS[spec] if isinstance(spec, str) else spec
    if params is None:
        if model is None:
            raise TypeError("make_optimizer needs model or params")
        params = model.parameters()
    optimizer = factory(params, lr=learning_rate)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"Expected the optimizer factory to return a torch.optim.Optimizer "
            f"but it returned {type(optimizer).__name__}"
        )
    return optimizer


def resolve_optimizer(
    model: nn.Module, optimizer: OptimizerSpec | None = None, learning_rate: float | None = None
) -> tuple[OptimizerSpec, float]:
    """The optimizer and learning rate to train ``model`` with: the arguments when given, else
    the ones the model declares (``GenericModel``-style ``custom_optimizer``, ``optimizer``,
    ``learning_rate``), else Adam at 1e-3. The one place where that choice is made."""
    spec = optimizer
    if spec is None:
        spec = getattr(model, "custom_optimizer", None) or getattr(model, "optimizer", None)
        if not (isinstance(spec, str) or callable(spec)) or isinstance(spec, torch.optim.Optimizer):
            spec = "adam"
    lr = learning_rate
    if lr is None:
        declared = getattr(model, "learning_rate", None)
        ok = isinstance(declared, numbers.Real) and not isinstance(declared, bool)
        lr = float(declared) if ok and declared > 0 else 1e-3  # type: ignore[arg-type,operator]
    return check_optimizer_spec(spec), check_positive_number(lr, "learning_rate")


def build_optimizer(
    model: nn.Module, optimizer: OptimizerSpec | None = None, learning_rate: float | None = None
) -> torch.optim.Optimizer:
    """The optimizer that trains ``model``.

    With neither ``optimizer`` nor ``learning_rate`` given, a model that defines
    ``configure_optimizers()`` (``GenericModel``, or Lightning-style) builds its own; it may return
    an optimizer, a list whose first item is one, or a dict with an ``"optimizer"`` entry.
    Otherwise :func:`resolve_optimizer` chooses."""
    configure = getattr(model, "configure_optimizers", None)
    if optimizer is None and learning_rate is None and callable(configure):
        return _first_optimizer(configure())
    return make_optimizer(*resolve_optimizer(model, optimizer, learning_rate), model=model)


def _first_optimizer(configured: Any) -> torch.optim.Optimizer:
    if isinstance(configured, dict):
        configured = configured.get("optimizer")
    if isinstance(configured, (list, tuple)) and configured:
        configured = configured[0]
        if isinstance(configured, (list, tuple)) and configured:  # ([optimizers], [schedulers])
            configured = configured[0]
    if not isinstance(configured, torch.optim.Optimizer):
        raise TypeError(
            "Expected model.configure_optimizers() to return a torch.optim.Optimizer (or a list "
            f"or dict holding one) but it returned {type(configured).__name__}"
        )
    return configured


def optimizer_summary(optimizer: torch.optim.Optimizer) -> tuple[str, float]:
    """``(name, learning rate)`` of a built optimizer, for the trajectory's record."""
    lr: Any = optimizer.param_groups[0].get("lr") if optimizer.param_groups else None
    return type(optimizer).__name__.lower(), float(lr) if lr is not None else float("nan")
