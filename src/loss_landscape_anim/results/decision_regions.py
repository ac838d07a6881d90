"""``DecisionRegions``: a 2-input classifier's predicted class over its input plane, per frame."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._base import Result
from ._checks import array_field, check_finite, check_increasing

__all__ = ["DecisionRegions"]


@dataclass(frozen=True, eq=False)
class DecisionRegions(Result):
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

    ARRAYS = ("rows", "classes", "points", "labels")
    REQUIRED = ARRAYS

    def __post_init__(self) -> None:
        n_classes = self.n_classes
        if not is_count(n_classes):
            raise ValueError(
                f"Expected n_classes to be a positive integer but got {self.n_classes!r}"
            )
        rows = array_field(self.rows, "rows", (None,), kind="int")
        check_increasing(rows, "rows")
        classes = array_field(self.classes, "classes", (rows.shape[0], None, None), kind="int")
        if classes.size and not 0 <= int(classes.min()) <= int(classes.max()) < int(n_classes):
            raise ValueError(
                f"Expected classes in [0, {int(n_classes) - 1}] but got values in "
                f"[{int(classes.min())}, {int(classes.max())}]"
            )
        extent = array_field(self.extent, "extent", (4,))
        check_finite(extent, "extent")
        if not (extent[0] < extent[1] and extent[2] < extent[3]):
            raise ValueError(f"Expected extent (x_min, x_max, y_min, y_max) but got {extent}")
        points = array_field(self.points, "points", (None, 2))
        check_finite(points, "points")
        labels = array_field(self.labels, "labels", (points.shape[0],), kind="int")
        for name, value in (("rows", rows), ("classes", classes), ("points", points)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "extent", tuple(float(v) for v in extent))
        object.__setattr__(self, "n_classes", int(n_classes))


def is_count(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1
