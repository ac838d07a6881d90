"""How honest a plane is about a path: the loss of the recorded weights against the loss at their
projection onto the plane (the value the contours show there)."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from ..evaluate import LossEvaluator
from ..results import PathLosses, Plane, Trajectory
from ._evaluators import check_spans, loss_evaluator, require
from .fill_losses import ROW_BLOCK_BYTES

__all__ = ["path_losses"]


def path_losses(
    model: nn.Module | None = None,
    data: Any = None,
    trajectory: Trajectory | None = None,
    plane: Plane | None = None,
    rows: np.ndarray | None = None,
    *,
    evaluator: LossEvaluator | None = None,
    **evaluator_options: Any,
) -> PathLosses:
    """The loss over ``data`` of the recorded weights of ``rows`` (default: all) and of their
    projections onto ``plane``; NaN for the rows not evaluated.

    ``evaluator_options`` go to :class:`LossEvaluator` (``device``, ``n_examples``, ...), or
    ``evaluator`` is one already built. Where the two losses differ, the plane misrepresents the
    path."""
    trajectory = require(trajectory, "trajectory", Trajectory)
    plane = require(plane, "plane", Plane)
    rows = np.arange(len(trajectory)) if rows is None else np.asarray(rows)
    evaluator = loss_evaluator(model, data, evaluator, evaluator_options)
    check_spans(evaluator, trajectory=trajectory, plane=plane)
    true = np.full(len(trajectory), np.nan)
    projected = np.full(len(trajectory), np.nan)
    block = max(1, ROW_BLOCK_BYTES // (trajectory.params.dtype.itemsize * trajectory.n_params))
    for first in range(0, rows.size, block):  # a spilled trajectory is read block by block
        chosen = rows[first : first + block]
        true[chosen] = evaluator.weight_losses(np.asarray(trajectory.params[chosen]))
    projected[rows] = evaluator.plane_losses(plane.origin, plane.directions, plane.path_2d[rows])
    return PathLosses(true, projected)
