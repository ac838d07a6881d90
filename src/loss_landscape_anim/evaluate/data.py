"""Evaluation data, read once: every point sees exactly the same examples, in fixed batches.

The mean loss over the data weights each batch by its terms: its examples, or for a token loss
its label tokens (:meth:`EvalData.weight`), so that the mean over batches is the mean over every
term of the data, whatever the batches, for the loss (:mod:`.schedule`) and its Hessian
(:mod:`.hessian_products`) alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..data import Inputs, materialize
from ..data.batches import (
    align_next_token,
    input_tensors,
    inputs_to,
    n_examples,
    take,
    trim_to_labels,
)
from ..data.checks import check_finite_inputs, check_finite_tensor
from ..errors import DataError
from ..losses import as_targets

__all__ = ["Counter", "EvalData"]

#: The terms of the loss per example (N,) from the targets (None: one term per example).
Counter = Callable[[torch.Tensor], "torch.Tensor | None"]


@dataclass(frozen=True)
class EvalData:
    """Examples ``X`` (N, ...) (a tensor, or named tensors passed as keyword arguments) and
    targets ``y`` (N, ...) on the evaluation device, floating inputs in the model's dtype and
    integer labels as int64, cut into fixed batches of ``batch_size`` examples. ``counts``:
    the terms of the loss per example (N,) (label tokens of a token loss; None: one each).
    ``trim``: the examples are next-token aligned sequences (:meth:`aligned`) and each batch is
    cut after its last labelled position. ``given``: the inputs as given, before that alignment
    (None: ``X`` is as given); BatchNorm statistics are recomputed on them (:meth:`given_head`),
    since training-mode BatchNorm sees the whole sequences. :meth:`prepare` refuses non-finite
    inputs or float targets with a ``DataError``."""

    X: Inputs
    y: torch.Tensor
    batch_size: int
    counts: torch.Tensor | None = None
    trim: bool = False
    given: Inputs | None = field(default=None, repr=False)
    _trimmed: dict[tuple[int, int], int] = field(default_factory=dict, repr=False)

    @classmethod
    def prepare(
        cls, data: Any, device: torch.device, dtype: torch.dtype, n_examples: int | None = None
    ) -> EvalData:
        X, y = materialize(data, n_examples=n_examples)
        check_finite_inputs(X, "evaluation inputs")
        check_finite_tensor(y, "evaluation targets")
        X = inputs_to(X, device, dtype)
        return cls(X, as_targets(y.to(device)), _examples(X))

    def with_batch_size(self, batch_size: int) -> EvalData:
        return dataclasses.replace(self, batch_size=max(1, min(batch_size, self.n_examples)))

    def counted(self, counter: Counter) -> EvalData:
        """The same data with the loss terms of each example counted by ``counter``; a
        ``DataError`` when they hold none (every label ignored)."""
        counts = counter(self.y)
        if counts is not None and not int(counts.sum()):
            raise DataError(_NO_TERMS)
        return dataclasses.replace(self, counts=counts)

    def aligned(self) -> EvalData | None:
        """The data of a causal language model with the next-token shift made (see
        :func:`~loss_landscape_anim.data.batches.align_next_token`), batches cut after their last
        labelled position; None for inputs that are not all sequences of the labels' length."""
        found = align_next_token(self.X, self.y)
        if found is None:
            return None
        return dataclasses.replace(
            self, X=found[0], y=found[1], trim=True, given=self.X, _trimmed={}
        )

    @property
    def n_examples(self) -> int:
        return _examples(self.X)

    @property
    def n_batches(self) -> int:
        return -(-self.n_examples // self.batch_size)

    def batch(self, b: int) -> tuple[Inputs, torch.Tensor]:
        """Batch ``b``: examples ``[b * batch_size, (b + 1) * batch_size)`` (cut after their
        last labelled position when ``trim``)."""
        sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
        x, y = take(self.X, sl), self.y[sl]
        if not self.trim:
            return x, y
        key = (self.batch_size, b)
        if key not in self._trimmed:
            self._trimmed[key] = int(trim_to_labels(x, y)[1].shape[1])
        end = self._trimmed[key]
        return {k: v[:, :end] for k, v in x.items()}, y[:, :end]  # type: ignore[union-attr]

    def tensor_batch(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``b`` of data whose inputs are one tensor (what the strategies that cut a
        sequential model take)."""
        x, y = self.batch(b)
        assert isinstance(x, torch.Tensor), "named inputs have no sequential split"
        return x, y

    def weight(self, b: int) -> int:
        """The terms of the loss in batch ``b``: its examples, or its label tokens."""
        if self.counts is None:
            return int(self.y[b * self.batch_size : (b + 1) * self.batch_size].shape[0])
        return int(self.counts[b * self.batch_size : (b + 1) * self.batch_size].sum())

    @property
    def total_weight(self) -> int:
        """The terms of the loss in all the data: the weights of the batches add up to it."""
        return self.n_examples if self.counts is None else int(self.counts.sum())

    def head(self, k: int) -> tuple[Inputs, torch.Tensor]:
        """The first ``k`` examples (to size and check the model on)."""
        return take(self.X, slice(0, k)), self.y[:k]

    def given_head(self, k: int) -> Inputs:
        """The inputs of the first ``k`` examples as given, in one batch (before the next-token
        shift and the trimming of :meth:`aligned`): what BatchNorm statistics are estimated on."""
        return take(self.as_given, slice(0, k))

    @property
    def as_given(self) -> Inputs:
        """The inputs before :meth:`aligned` (``X`` itself when it made no alignment)."""
        return self.X if self.given is None else self.given

    def fingerprint(self) -> str:
        """A short hash of the examples (as given) and targets."""
        from .checkpoint import array_fingerprint

        return array_fingerprint(*input_arrays(self.as_given), self.y)


#: The error for evaluation data whose labels are all ignored.
_NO_TERMS = (
    "Expected evaluation data with label tokens to measure the loss on, but every label is "
    "ignored (-100, after the shift by one of a causal language model)"
)


def _examples(X: Inputs) -> int:
    return n_examples(X)


def input_arrays(X: Inputs) -> list[Any]:
    """What identifies inputs in a fingerprint: the tensor, or each named tensor after its name
    (sorted by name)."""
    if not isinstance(X, dict):
        return [X]
    arrays: list[Any] = []
    for name, tensor in input_tensors(X):
        arrays += [np.frombuffer(name.encode(), dtype=np.uint8), tensor]
    return arrays
