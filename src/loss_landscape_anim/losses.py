"""The loss and accuracy of a model's predictions: shared by training and by evaluation.

Which loss a model is measured by (:func:`loss_for`): its own ``loss_fn`` when it has one (other
than the plain cross-entropy ``GenericModel`` declares), else cross-entropy, taken per example for
class logits (N, C) and per token for token logits (N, L, V) with integer labels (N, L): the mean
over every label token that is not :data:`IGNORE_INDEX`, with the labels shifted by one for a
causal language model given its inputs by name (the way Hugging Face's models compute it), so
the loss over many batches is their sum over label tokens divided by the token count.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import DataError

__all__ = [
    "IGNORE_INDEX",
    "Loss",
    "LossFn",
    "as_targets",
    "batch_accuracy",
    "checked_loss",
    "cross_entropy_loss",
    "is_causal_lm",
    "is_default_cross_entropy",
    "loss_for",
    "loss_function",
    "predictions",
    "token_cross_entropy",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: Label tokens with this value are left out of token losses (Hugging Face's and torch's -100).
IGNORE_INDEX = -100
#: Hugging Face's ``loss_type`` of a causal language model (None: its default, also causal).
_CAUSAL_LOSS_TYPES = (None, "ForCausalLM")


@dataclass(frozen=True)
class Loss:
    """The loss a model is measured by, and what its mean runs over: examples, or label tokens
    (``tokens``; ``shift``: labels shifted by one, next-token prediction). Called as
    ``loss(y_pred, y)``: a scalar mean."""

    fn: LossFn
    tokens: bool = False
    shift: bool = False

    def __call__(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.tokens:
            return token_cross_entropy(y_pred, y, shift=self.shift)
        return self.fn(y_pred, y)

    @property
    def default_cross_entropy(self) -> bool:
        """True for plain cross-entropy over examples (evaluators have faster forms of it)."""
        return not self.tokens and is_default_cross_entropy(self.fn)

    def counts(self, y: torch.Tensor) -> torch.Tensor | None:
        """The terms of the mean per example (N,) int64, for a token loss: its label tokens not
        ignored (after the shift). None for a mean over examples (one term each)."""
        if not self.tokens:
            return None
        labels = y[:, 1:] if self.shift else y
        return (labels != IGNORE_INDEX).reshape(labels.shape[0], -1).sum(dim=1)

    def correct(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """How many predictions are right (a scalar tensor): examples whose argmax is the label,
        or label tokens (not ignored) whose argmax is the label."""
        if not self.tokens:
            return (y_pred.argmax(dim=1) == y).sum()
        if self.shift:
            y_pred, y = y_pred[:, :-1], y[:, 1:]
        return ((y_pred.argmax(dim=-1) == y) & (y != IGNORE_INDEX)).sum()

    def accuracy(self, y_pred: torch.Tensor, y: torch.Tensor) -> float:
        """Share of right predictions (of label tokens for a token loss); NaN where accuracy
        does not apply (not class logits, or no label token)."""
        if not self.tokens:
            return batch_accuracy(y_pred, y)
        counts = self.counts(y)
        total = int(counts.sum()) if counts is not None else 0
        return float(self.correct(y_pred, y)) / total if total else math.nan


def loss_for(model: nn.Module, y_pred: torch.Tensor, y: torch.Tensor, *, named: bool) -> Loss:
    """The loss ``model`` is measured by, from its predictions ``y_pred`` on a batch with
    targets ``y`` (see the module docstring); ``named``: the inputs were given by name (a dict
    batch), as to a Hugging Face model, whose labels a causal language model shifts."""
    own = getattr(model, "loss_fn", None)
    if callable(own) and not is_default_cross_entropy(own):
        return Loss(own)
    if _token_predictions(y_pred, y):
        return Loss(F.cross_entropy, tokens=True, shift=named and is_causal_lm(model))
    return Loss(own if callable(own) else F.cross_entropy)


def is_causal_lm(model: nn.Module) -> bool:
    """Whether ``model``'s labels are shifted by one for its loss: a Hugging Face model whose
    ``loss_type`` is that of a causal language model, or a model that declares none."""
    return getattr(model, "loss_type", None) in _CAUSAL_LOSS_TYPES


def _token_predictions(y_pred: torch.Tensor, y: torch.Tensor) -> bool:
    return (
        y_pred.ndim == 3
        and y.ndim == 2
        and not (y.is_floating_point() or y.is_complex() or y.dtype == torch.bool)
        and tuple(y_pred.shape[:2]) == tuple(y.shape)
    )


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, *, shift: bool) -> torch.Tensor:
    """Mean cross-entropy of token logits (N, L, V) against labels (N, L) over the labels that are
    not :data:`IGNORE_INDEX` (0 when there is none); with ``shift``, position t predicts label
    t + 1 (as a causal language model)."""
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
    total = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return total / (labels != IGNORE_INDEX).sum().clamp(min=1)


def predictions(output: Any) -> torch.Tensor:
    """The predictions in a model's output: the output itself when it is a tensor, its
    ``logits`` for a Hugging Face ``ModelOutput``, a dict or an object with ``.logits``, else the
    first item of a tuple or list."""
    if isinstance(output, torch.Tensor):
        return output
    logits = (
        output.get("logits") if isinstance(output, Mapping) else getattr(output, "logits", None)
    )
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(
        f"Expected the model to return its predictions (a tensor, a ModelOutput or dict with "
        f"'logits', or a tuple whose first item is the predictions) but it returned a "
        f"{type(output).__name__}"
        + (f" with keys {sorted(map(str, output))}" if isinstance(output, Mapping) else "")
    )


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
    y_pred = predictions(y_pred)
    if check_labels and isinstance(loss_fn, Loss) and loss_fn.tokens:
        _check_token_labels(y_pred, y)
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


def _check_token_labels(logits: torch.Tensor, labels: torch.Tensor) -> None:
    used = labels[labels != IGNORE_INDEX]
    if not used.numel():
        return
    low, high = int(used.min()), int(used.max())
    if low < 0 or high >= logits.shape[-1]:
        raise DataError(
            f"Expected label tokens in [0, {logits.shape[-1] - 1}] (or {IGNORE_INDEX}, ignored) "
            f"for a model with a vocabulary of {logits.shape[-1]} but got labels in [{low}, {high}]"
        )


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
