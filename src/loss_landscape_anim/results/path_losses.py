"""``PathLosses``: how honest a plane is about a path, row by row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._base import Result
from ._checks import array_field

__all__ = ["PathLosses"]


@dataclass(frozen=True, eq=False)
class PathLosses(Result):
    """Per-row evaluation of a path on the evaluation data, to show how honest the slice is.

    ``true`` is the loss of the recorded weights; ``projected`` the loss at their projection onto
    the plane (the value the contours show there). NaN where not evaluated.
    """

    true: np.ndarray
    projected: np.ndarray

    ARRAYS = ("true", "projected")
    REQUIRED = ARRAYS

    def __post_init__(self) -> None:
        true = array_field(self.true, "true", (None,))
        projected = array_field(self.projected, "projected", true.shape)
        object.__setattr__(self, "true", true)
        object.__setattr__(self, "projected", projected)
