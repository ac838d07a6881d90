"""``PathLosses``: how honest a plane is about a path, row by row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PathLosses"]


@dataclass(frozen=True)
class PathLosses:
    """Per-row evaluation of a path on the evaluation data, to show how honest the slice is.

    ``true`` is the loss of the recorded weights; ``projected`` the loss at their projection onto
    the plane (the value the contours show there). NaN where not evaluated.
    """

    true: np.ndarray
    projected: np.ndarray
