"""Optimizers by name, or a user's ``torch.optim`` class or factory."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["OPTIMIZERS", "OptimizerSpec", "make_optimizer"]

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
    spec: OptimizerSpec, params: Iterable[torch.nn.Parameter], learning_rate: float
) -> torch.optim.Optimizer:
    """Build the optimizer ``spec`` over ``params`` with learning rate ``learning_rate``."""
    spec = check_optimizer_spec(spec)
    factory = OPTIMIZERS[spec] if isinstance(spec, str) else spec
    optimizer = factory(params, lr=learning_rate)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"Expected the optimizer factory to return a torch.optim.Optimizer "
            f"but it returned {type(optimizer).__name__}"
        )
    return optimizer
