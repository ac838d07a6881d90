"""``DecisionRegions``: a 2-input classifier's predicted class over its input plane, per frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DecisionRegions"]


@dataclass(frozen=True)
class DecisionRegions:
    """Predicted class on a grid of the input plane, one image per frame.

    Attributes:
        rows: (F,) the trajectory rows the images belong to, increasing.
        classes: (F, H, W) uint8 predicted class; row 0 of an image is the lowest input y.
        extent: (x_min, x_max, y_min, y_max) of the input grid.
        points: (N, 2) the data points; labels: (N,) their classes.
        n_classes: number of classes.
    """

    rows: np.ndarray
    classes: np.ndarray
    extent: tuple[float, float, float, float]
    points: np.ndarray
    labels: np.ndarray
    n_classes: int
