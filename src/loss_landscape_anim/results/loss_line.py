"""``LossLine``: the loss along the straight line between two weight vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._base import Result
from ._checks import array_field, check_finite, check_increasing, optional_number

__all__ = ["LossLine"]


@dataclass(frozen=True, eq=False)
class LossLine(Result):
    """The loss and accuracy at ``start + alpha * (end - start)`` for each ``alpha``.

    Goodfellow et al. 2015 ("Qualitatively characterizing neural network optimization problems")
    plot this from the initial to the final weights; Frankle et al. 2020 ("Linear Mode Connectivity
    and the Lottery Ticket Hypothesis") use its barrier between two solutions: two weight vectors
    whose line has no barrier lie in one basin.

    Attributes:
        alphas: (N,) increasing; 0 is ``start`` and 1 is ``end`` (both present); values below 0
            or above 1 extend the line beyond them (``margin``).
        loss: (N,) mean loss over the evaluation data at each alpha.
        accuracy: (N,) share of correct argmax predictions at each alpha (NaN when the model is
            not a classifier).
        labels: names of the two ends, e.g. ``("initial", "final")`` or two optimizers.
        n_examples: how many examples each value is the mean over (None: unknown).
    """

    alphas: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    labels: tuple[str, str] = ("start", "end")
    n_examples: int | None = None

    ARRAYS = ("alphas", "loss", "accuracy")
    REQUIRED = ARRAYS

    def __post_init__(self) -> None:
        alphas = array_field(self.alphas, "alphas", (None,))
        check_finite(alphas, "alphas")
        check_increasing(alphas, "alphas")
        n = alphas.shape[0]
        loss = array_field(self.loss, "loss", (n,))
        accuracy = array_field(self.accuracy, "accuracy", (n,))
        if not (np.isin(0.0, alphas) and np.isin(1.0, alphas)):
            raise ValueError("Expected alphas to include 0 (start) and 1 (end)")
        labels = self.labels
        if isinstance(labels, list):  # as a file's JSON metadata holds them
            labels = tuple(labels)
        if not (isinstance(labels, tuple) and len(labels) == 2):
            raise ValueError(f"Expected labels to be a pair (start, end) but got {labels!r}")
        object.__setattr__(self, "alphas", alphas)
        object.__setattr__(self, "loss", loss)
        object.__setattr__(self, "accuracy", accuracy)
        object.__setattr__(self, "labels", (str(labels[0]), str(labels[1])))
        object.__setattr__(
            self, "n_examples", optional_number(self.n_examples, "n_examples", low=1, integer=True)
        )

    @property
    def start_loss(self) -> float:
        """loss(0), at ``start``."""
        return float(self.loss[self.alphas == 0.0][0])

    @property
    def end_loss(self) -> float:
        """loss(1), at ``end``."""
        return float(self.loss[self.alphas == 1.0][0])

    @property
    def linear(self) -> np.ndarray:
        """(N,) the straight line through loss(0) and loss(1): ``(1 - a) loss(0) + a loss(1)``."""
        return (1.0 - self.alphas) * self.start_loss + self.alphas * self.end_loss

    @property
    def barrier(self) -> float:
        """The loss barrier: max over alpha in [0, 1] of ``loss(alpha)`` minus the straight
        line between the two ends. Never below 0: at alpha 0 and 1 the difference is 0. About
        0 (up to rounding) for a loss that is convex along the line, where the curve lies on
        or under the straight line; clearly positive when the two ends lie in different basins.
        NaN if a loss on [0, 1] is NaN."""
        inside = (self.alphas >= 0.0) & (self.alphas <= 1.0)
        return float(np.max(self.loss[inside] - self.linear[inside]))
