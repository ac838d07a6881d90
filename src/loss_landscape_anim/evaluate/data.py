"""Evaluation data, read once: every point sees exactly the same examples, in fixed batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..data import materialize
from ..data.checks import check_finite_tensor
from ..losses import as_targets

__all__ = ["EvalData"]


@dataclass(frozen=True)
class EvalData:
    """Examples ``X`` (N, ...) and targets ``y`` (N, ...) on the evaluation device, inputs in the
    model's dtype and integer labels as int64, cut into fixed batches of ``batch_size`` examples.
    :meth:`prepare` refuses non-finite inputs or float targets with a ``DataError``."""

    X: torch.Tensor
    y: torch.Tensor
    batch_size: int

    @classmethod
    def prepare(
        cls, data: Any, device: torch.device, dtype: torch.dtype, n_examples: int | None = None
    ) -> EvalData:
        X, y = materialize(data, n_examples=n_examples)
        check_finite_tensor(X, "evaluation inputs")
        check_finite_tensor(y, "evaluation targets")
        X = X.to(device, dtype if X.is_floating_point() else X.dtype)
        return cls(X, as_targets(y.to(device)), int(X.shape[0]))

    def with_batch_size(self, batch_size: int) -> EvalData:
        return EvalData(self.X, self.y, max(1, min(batch_size, self.n_examples)))

    @property
    def n_examples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_batches(self) -> int:
        return -(-self.n_examples // self.batch_size)

    def batch(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``b``: examples ``[b * batch_size, (b + 1) * batch_size)``."""
        sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
        return self.X[sl], self.y[sl]

    def head(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``k`` examples (to size and check the model on)."""
        return self.X[:k], self.y[:k]

    def fingerprint(self) -> str:
        """A short hash of the examples and targets."""
        from .checkpoint import array_fingerprint

        return array_fingerprint(self.X, self.y)
