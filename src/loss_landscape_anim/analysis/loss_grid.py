"""Stage 3: ``compute_loss_grid``, the loss on a grid of points of a plane in weight space.

The caller's model only supplies the architecture: the weights of each point are built from the
plane and passed to a functional copy of the model (see :mod:`loss_landscape_anim.evaluate`), in
chunks of points sized to a memory budget, on evaluation data prepared once.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from torch import nn

from .._validate import check_positive_number, is_integer
from ..evaluate import LossEvaluator
from ..results import LossGrid, Plane
from ._evaluators import check_spans, loss_evaluator, require

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_RESOLUTION",
    "compute_loss_grid",
    "grid_axes",
    "grid_coords",
]

#: Default number of grid points along each axis.
DEFAULT_RESOLUTION = 100
#: Default room around the path on each side, as a share of its extent.
DEFAULT_MARGIN = 0.3
#: The narrower axis of the grid spans at least this share of the wider one.
MIN_ASPECT = 0.1


def grid_axes(
    paths_2d: list[np.ndarray], resolution: int, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (R,) along each axis covering every point of ``paths_2d`` plus ``margin`` times
    the path's extent on each side. An extent below ``MIN_ASPECT`` times the other axis's (or 1,
    when both are zero) is widened to that."""
    points = np.concatenate([p[np.isfinite(p).all(axis=1)] for p in paths_2d] + [np.zeros((1, 2))])
    low, high = points.min(axis=0), points.max(axis=0)
    largest = float((high - low).max()) or 1.0
    # An axis much narrower than the other (a path along one direction) is widened about its
    # centre, so the picture does not magnify rounding noise into a shape.
    narrow = (high - low) < MIN_ASPECT * largest
    centre = (low + high) / 2
    low = np.where(narrow, centre - MIN_ASPECT * largest / 2, low)
    high = np.where(narrow, centre + MIN_ASPECT * largest / 2, high)
    pad = margin * (high - low)
    low, high = low - pad, high + pad
    return np.linspace(low[0], high[0], resolution), np.linspace(low[1], high[1], resolution)


def check_grid_arguments(resolution: Any, margin: Any) -> tuple[int, float]:
    """Validated ``(resolution, margin)``: an integer >= 2 whose grid fits in memory, and a
    finite number >= 0."""
    if not is_integer(resolution) or resolution < 2:
        raise ValueError(f"Expected resolution to be an integer >= 2 but got {resolution!r}")
    needed = int(resolution) ** 2 * GRID_BYTES_PER_POINT
    available = physical_memory()
    if available is not None and needed > available // 2:
        raise ValueError(
            f"Expected a resolution whose grid fits in memory but resolution={resolution} makes "
            f"{int(resolution) ** 2:.3g} points, whose coordinates and values alone take "
            f"{needed / 2**30:.3g} GiB (this machine has {available / 2**30:.3g} GiB): the grid "
            "costs resolution^2 points; lower the resolution"
        )
    return int(resolution), check_positive_number(margin, "margin", allow_zero=True)


#: Bytes a grid holds per point besides the evaluation: its coordinates (2 float64) and their
#: meshgrid, the loss (float64), and the copies the result makes of them.
GRID_BYTES_PER_POINT = 64


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (None where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def compute_loss_grid(
    model: nn.Module | None = None,
    data: Any = None,
    plane: Plane | None = None,
    *,
    resolution: int = DEFAULT_RESOLUTION,
    margin: float = DEFAULT_MARGIN,
    extra_paths: list[np.ndarray] | None = None,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    evaluator: LossEvaluator | None = None,
    **evaluator_options: Any,
) -> LossGrid:
    """Evaluate the mean loss over ``data`` on an R x R grid of ``plane``.

    The grid covers the plane's path (and ``extra_paths``, (T, 2) each) plus ``margin`` times its
    extent on each side. The caller's model is not changed.

    Args:
        model: supplies the architecture (and buffers, such as BatchNorm statistics); the weights
            at each point are ``plane.point(x, y)``. Evaluated in eval mode.
        data: the evaluation data: a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``.
        plane: the plane, from :func:`project`.
        resolution: points along each axis (>= 2).
        margin: extra room on each side, as a share of the path's extent (>= 0).
        extra_paths: more (T, 2) paths the grid must cover (other optimizers on the same plane).
        progress: show a progress bar.
        checkpoint: a file (``.npz``) that finished chunks of points are saved to as they
            complete, with what identifies the job (plane, resolution, margin, data, model
            layout and buffers, precision). Rerun with the same file after a crash or a kill:
            only the missing points are computed, and the grid is the same. A file of another
            job is refused with an error that says what differs.
        evaluator: a :class:`LossEvaluator` already built (or a curvature evaluator or
            preparation to share), instead of ``model``, ``data`` and ``evaluator_options``: a
            run that evaluates several things prepares its model and data once.
        evaluator_options: the options of :class:`LossEvaluator`: ``device``, ``n_examples``
            (the first examples only), ``chunk_size``, ``memory_budget``, ``num_threads``,
            ``strategy`` (how chunks of points are evaluated; every strategy gives the same
            values to rounding), ``distributed`` (under ``torch.distributed``, each rank
            evaluates only its share of the chunks and every rank returns the whole grid; rank 0
            writes the checkpoint), ``stream`` and ``subset_seed`` (data read from their dataset
            for every chunk of points), ``bn`` (``"eval"``: the model's running BatchNorm
            statistics; ``"recompute"``: re-estimated at each point from the first 1,024
            examples) and ``precision`` (``"bf16"`` or ``"fp16"`` on GPUs: the products of a
            float32 model under autocast, recorded as ``LossGrid.precision``; the README gives the
            largest error against float32 measured).
    """
    plane = require(plane, "plane", Plane)
    resolution, margin = check_grid_arguments(resolution, margin)
    evaluator = loss_evaluator(model, data, evaluator, evaluator_options)
    check_spans(evaluator, plane=plane)
    xs, ys = grid_axes([plane.path_2d, *(extra_paths or [])], resolution, margin)
    job = {
        "what": "loss grid",
        "plane": plane.fingerprint(),
        "resolution": resolution,
        "margin": margin,
    }
    losses = evaluator.plane_losses(
        plane.origin,
        plane.directions,
        grid_coords(xs, ys),
        progress=progress,
        desc="loss grid",
        checkpoint=checkpoint,
        job=job,
    )
    return LossGrid.from_values(
        xs,
        ys,
        losses.reshape(resolution, resolution),
        margin=margin,
        n_examples=evaluator.n_examples,
        precision=evaluator.precision,
        plane_fingerprint=plane.fingerprint(),
    )


def grid_coords(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The (R * R, 2) coordinates of the grid of axes ``xs`` and ``ys``, row by row (``ys``
    outermost), as :attr:`LossGrid.loss` holds them."""
    XX, YY = np.meshgrid(xs, ys)
    return np.stack([XX.ravel(), YY.ravel()], axis=1)
