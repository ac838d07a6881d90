"""``fill_losses``: the true loss over given data of a trajectory's rows that nothing measured."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from torch import nn

from ..evaluate import LossEvaluator
from ..results import Trajectory
from ._evaluators import check_spans, loss_evaluator

__all__ = ["fill_losses"]

#: Bytes of recorded weights read at once (a spilled trajectory is read block by block).
ROW_BLOCK_BYTES = 256 * 2**20


def fill_losses(
    trajectory: Trajectory,
    model: nn.Module | None = None,
    data: Any = None,
    *,
    overwrite: bool = False,
    progress: bool = False,
    evaluator: LossEvaluator | None = None,
    **evaluator_options: Any,
) -> Trajectory:
    """A copy of ``trajectory`` whose NaN losses are replaced by the mean loss over ``data`` of
    the same rows' weights (all rows with ``overwrite=True``, so the whole curve is on one data
    set); accuracies are kept.

    The rows are evaluated in batches of weight vectors by :class:`LossEvaluator`, in eval mode
    with ``model``'s buffers (BatchNorm statistics); ``evaluator_options`` go to it (``device``,
    ``n_examples``, ``chunk_size``, ...), or ``evaluator`` is one already built. ``model``
    supplies the architecture only: it is not changed.
    """
    if not isinstance(trajectory, Trajectory):
        raise TypeError(
            f"Expected trajectory to be a Trajectory but got {type(trajectory).__name__}"
        )
    loss = np.array(trajectory.loss, dtype=np.float64)
    rows = np.arange(len(loss)) if overwrite else np.flatnonzero(np.isnan(loss))
    if rows.size == 0:
        return trajectory
    evaluator = loss_evaluator(model, data, evaluator, evaluator_options)
    check_spans(evaluator, trajectory=trajectory)
    itemsize = trajectory.params.dtype.itemsize
    block = max(1, ROW_BLOCK_BYTES // (itemsize * trajectory.n_params))
    for start in range(0, rows.size, block):
        chosen = rows[start : start + block]
        loss[chosen] = evaluator.weight_losses(
            np.asarray(trajectory.params[chosen]), progress=progress, desc="trajectory losses"
        )
    return dataclasses.replace(trajectory, loss=loss)
