"""Decision regions of a 2-input classifier along its path, for the animation's side panel."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import NumThreads, is_small_model, resolve_device, thread_scope
from .._validate import check_positive_int, check_positive_number, is_integer
from ..data import materialize
from ..evaluate import CurvatureEvaluator, FunctionalModel, LossEvaluator, Preparation
from ..evaluate.points import WeightPoints
from ..evaluate.schedule import chunk_slices
from ..evaluate.strategies.base import map_points
from ..results import DecisionRegions, Trajectory
from ._evaluators import check_spans, require

__all__ = ["decision_regions"]

#: Weight vectors classified in one vectorised pass.
_CHUNK = 16


def decision_regions(
    model: nn.Module | None,
    data: Any,
    trajectory: Trajectory,
    rows: np.ndarray,
    *,
    resolution: int = 80,
    margin: float = 0.1,
    max_points: int = 300,
    device: str | torch.device | None = None,
    num_threads: NumThreads = None,
    evaluator: LossEvaluator | CurvatureEvaluator | Preparation | None = None,
) -> DecisionRegions:
    """Classify a ``resolution`` x ``resolution`` grid of the input plane with the weights of each
    of ``rows`` of the trajectory. Needs a model on 2-D inputs with class logits (N, C).

    Args:
        model: supplies the architecture; the weights come from the trajectory.
        data: the data whose inputs span the plane (and whose points are drawn over it).
        trajectory, rows: the recorded path and the rows to classify with.
        resolution: grid points per axis of the input plane.
        margin: room around the data on each side, as a share of their extent.
        max_points: at most this many data points are kept for drawing, evenly spread.
        device, num_threads: as for :func:`compute_loss_grid`.
        evaluator: an evaluator (or preparation) already built whose model copy, device and
            threads to use instead of ``model``, ``device`` and ``num_threads`` (``data`` still
            gives the inputs whose plane is classified).
    """
    resolution = check_positive_int(resolution, "resolution")
    margin = check_positive_number(margin, "margin", allow_zero=True)
    max_points = check_positive_int(max_points, "max_points")
    trajectory = require(trajectory, "trajectory", Trajectory)
    functional, threads = _model_of(model, evaluator, device, num_threads)
    check_spans(functional, trajectory=trajectory)
    torch_device = functional.device
    X, y = materialize(data)
    if isinstance(X, dict):
        raise ValueError(
            f"Decision regions need 2-D inputs (N, 2) but the data's inputs are named ({sorted(X)})"
        )
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(
            f"Decision regions need 2-D inputs (N, 2) but the data have shape {tuple(X.shape)}"
        )
    if y.is_floating_point() or y.ndim != 1:
        raise ValueError(
            f"Decision regions need class labels (N,) of an integer dtype but the targets are "
            f"{y.dtype} of shape {tuple(y.shape)}"
        )
    low, high = X.min(0).values.numpy(), X.max(0).values.numpy()
    pad = margin * (high - low)
    gx = np.linspace(low[0] - pad[0], high[0] + pad[0], resolution)
    gy = np.linspace(low[1] - pad[1], high[1] + pad[1], resolution)
    GX, GY = np.meshgrid(gx, gy)
    inputs = torch.tensor(
        np.stack([GX.ravel(), GY.ravel()], 1), dtype=functional.dtype, device=torch_device
    )

    def predict(params: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional.outputs(params, inputs).argmax(dim=1)

    rows = np.asarray(rows)
    points = WeightPoints.of(trajectory.params[rows], torch_device, functional.dtype)
    small = is_small_model(functional.layout.n_params, torch_device)
    declared = getattr(functional.module, "num_classes", None)
    # Each chunk's classes go straight into one preallocated uint8 array: keeping the chunks'
    # int64 results alive between the large temporaries of later chunks fragmented the heap
    # (peak memory grew by ~0.8 MB per row).
    classes = np.empty((len(rows), resolution, resolution), dtype=np.uint8)
    with torch.no_grad(), thread_scope(threads, small=small):
        for sl in chunk_slices(len(points), _CHUNK):
            predicted = map_points(predict, (functional.params(points.weights(sl)),), True)
            classes[sl] = predicted.to(torch.uint8).reshape(-1, resolution, resolution).cpu()
    keep = np.linspace(0, len(X) - 1, min(len(X), max_points)).astype(int)
    labels = y.numpy()[keep]
    n_classes = max(
        int(declared) if declared is not None and is_integer(declared) else 0,
        int(classes.max()) + 1,
        int(labels.max()) + 1 if labels.size else 0,
    )
    return DecisionRegions(
        np.asarray(rows),
        classes,
        (gx[0], gx[-1], gy[0], gy[-1]),
        X.numpy()[keep],
        labels,
        n_classes,
    )


def _model_of(
    model: nn.Module | None,
    evaluator: LossEvaluator | CurvatureEvaluator | Preparation | None,
    device: str | torch.device | None,
    num_threads: NumThreads,
) -> tuple[FunctionalModel, NumThreads]:
    """The functional model to classify with, and the threads: the evaluator's, or a new copy of
    ``model`` on ``device``."""
    if evaluator is None:
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"Expected model to be a torch.nn.Module but got {type(model).__name__} (or "
                "pass evaluator=, an evaluator already built)"
            )
        return FunctionalModel(model, resolve_device(device)), num_threads
    given = [
        n
        for n, v in (("model", model), ("device", device), ("num_threads", num_threads))
        if v is not None
    ]
    if given:
        raise ValueError(
            f"Expected either evaluator= or {', '.join(given)}, not both: the evaluator has its "
            "own model copy, device and threads"
        )
    preparation = evaluator if isinstance(evaluator, Preparation) else evaluator.preparation
    return preparation.model, preparation.num_threads
