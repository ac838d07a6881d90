"""``LossLine``: the loss along the straight line between two weight vectors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import load_npz, save_npz

__all__ = ["LossLine"]


@dataclass(frozen=True, eq=False)
class LossLine:
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

    def __post_init__(self) -> None:
        n = len(self.alphas)
        if self.loss.shape != (n,) or self.accuracy.shape != (n,):
            raise ValueError(
                f"Expected alphas, loss and accuracy of one length but got {n}, "
                f"{self.loss.shape} and {self.accuracy.shape}"
            )
        if not (np.isin(0.0, self.alphas) and np.isin(1.0, self.alphas)):
            raise ValueError("Expected alphas to include 0 (start) and 1 (end)")
        labels = self.labels
        if not (isinstance(labels, tuple) and len(labels) == 2):
            raise ValueError(f"Expected labels to be a pair (start, end) but got {labels!r}")

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

    def save(self, path: str | os.PathLike) -> Path:
        arrays = {"alphas": self.alphas, "loss": self.loss, "accuracy": self.accuracy}
        meta = {"labels": list(self.labels), "n_examples": self.n_examples}
        return save_npz(path, "LossLine", arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LossLine:
        arrays, meta = load_npz(path, "LossLine")
        labels = tuple(meta.get("labels", ("start", "end")))
        return cls(
            arrays["alphas"],
            arrays["loss"],
            arrays["accuracy"],
            (str(labels[0]), str(labels[1])),
            meta.get("n_examples"),
        )
