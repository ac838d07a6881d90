"""The loss and accuracy of a model's predictions: shared by training and by evaluation."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .errors import DataError

__all__ = [
    "LossFn",
    "as_targets",
    "batch_accuracy",
    "checked_loss",
    "cross_entropy_loss",
    "is_default_cross_entropy",
    "loss_function",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def loss_function(model: nn.Module) -> LossFn:
    """The model's ``loss_fn`` when it has one, else mean cross-entropy."""
    fn = getattr(model, "loss_fn", None)
    return fn if callable(fn) else F.cross_entropy


def as_targets(y: torch.Tensor) -> torch.Tensor:
    """Integer class labels of any integer dtype (int32, uint8, ...) as int64, the dtype torch's
    classification losses need; other targets unchanged."""
    integer = not (y.is_floating_point() or y.is_complex() or y.dtype == torch.bool)
    return y.long() if integer and y.dtype != torch.int64 else y


def batch_accuracy(y_pred: torch.Tensor, y: torch.Tensor) -> float:
    """Share of correct argmax predictions for class logits (N, C); NaN for other outputs."""
    if y_pred.ndim != 2 or y.ndim != 1 or y.is_floating_point():
        return math.nan
    return float((y_pred.argmax(dim=1) == y).float().mean())


def checked_loss(
    loss_fn: LossFn, y_pred: torch.Tensor, y: torch.Tensor, *, check_labels: bool = True
) -> torch.Tensor:
    """``loss_fn(y_pred, y)``, with a clear error when the output does not fit the targets.

    ``check_labels`` compares class labels with the number of outputs first (a device sync; the
    training loop does it on its first batch, and the loss itself fails on later bad labels)."""
    if not isinstance(y_pred, torch.Tensor):
        raise TypeError(
            f"Expected the model to return a tensor of predictions but it returned a "
            f"{type(y_pred).__name__}: make forward() return the predictions only (e.g. the "
            "logits of a (logits, features) pair), or wrap the model in a module that does"
        )
    if (
        check_labels
        and y_pred.ndim == 2
        and y.ndim == 1
        and not y.is_floating_point()
        and y.numel()
    ):
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= y_pred.shape[1]:
            raise DataError(
                f"Expected labels in [0, {y_pred.shape[1] - 1}] for a model with "
                f"{y_pred.shape[1]} outputs but got labels in [{low}, {high}]"
            )
    try:
        loss = loss_fn(y_pred, y)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise DataError(
            f"The model's output of shape {tuple(y_pred.shape)} does not fit the loss with targets "
            f"of shape {tuple(y.shape)} and dtype {y.dtype}: {exc}"
        ) from exc
    if loss.ndim != 0:
        raise DataError(f"Expected the loss to be a scalar but got shape {tuple(loss.shape)}")
    return loss


def cross_entropy_loss(method: Callable) -> Callable:
    """Mark a model's ``loss_fn`` method as plain mean cross-entropy (the evaluators then use
    their faster written-out cross-entropy); a subclass that overrides it is not marked."""
    method.is_plain_cross_entropy = True  # type: ignore[attr-defined]
    return method


def is_default_cross_entropy(loss_fn: Callable) -> bool:
    """True for ``F.cross_entropy`` and a ``loss_fn`` marked by :func:`cross_entropy_loss` (the
    default of ``GenericModel``, unless a subclass overrides it)."""
    function = getattr(loss_fn, "__func__", loss_fn)
    return loss_fn is F.cross_entropy or getattr(function, "is_plain_cross_entropy", False)
