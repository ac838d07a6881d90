"""How honest a plane is about a path: the loss of the recorded weights against the loss at their
projection onto the plane (the value the contours show there)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from ..evaluate import LossEvaluator
from ..results import PathLosses, Plane, Trajectory

__all__ = ["path_losses"]


def path_losses(
    model: nn.Module,
    data: Any,
    trajectory: Trajectory,
    plane: Plane,
    rows: np.ndarray | None = None,
    **evaluator_options: Any,
) -> PathLosses:
    """The loss over ``data`` of the recorded weights of ``rows`` (default: all) and of their
    projections onto ``plane``; NaN for the rows not evaluated.

    ``evaluator_options`` go to :class:`LossEvaluator` (``device``, ``n_examples``, ...). Where the
    two losses differ, the plane misrepresents the path."""
    rows = np.arange(len(trajectory)) if rows is None else np.asarray(rows)
    evaluator = LossEvaluator(model, data, **evaluator_options)
    true = np.full(len(trajectory), np.nan)
    projected = np.full(len(trajectory), np.nan)
    true[rows] = evaluator.weight_losses(np.asarray(trajectory.params[rows]))
    projected[rows] = evaluator.plane_losses(plane.origin, plane.directions, plane.path_2d[rows])
    return PathLosses(true, projected)
