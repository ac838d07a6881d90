"""Stage 3: ``compute_loss_grid``, the loss on a grid of points of a plane in weight space.

The caller's model only supplies the architecture: the weights of each point are built from the
plane and passed to a functional copy of the model (see :mod:`loss_landscape_anim.evaluate`), in
chunks of points sized to a memory budget, on evaluation data prepared once.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import NumThreads
from .._validate import check_positive_number, is_integer
from ..evaluate import LossEvaluator
from ..results import LossGrid, Plane

__all__ = ["DEFAULT_MARGIN", "DEFAULT_RESOLUTION", "compute_loss_grid", "grid_axes"]

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
    """Validated ``(resolution, margin)``: an integer >= 2 and a finite number >= 0."""
    if not is_integer(resolution) or resolution < 2:
        raise ValueError(f"Expected resolution to be an integer >= 2 but got {resolution!r}")
    return int(resolution), check_positive_number(margin, "margin", allow_zero=True)


def compute_loss_grid(
    model: nn.Module,
    data: Any,
    plane: Plane,
    *,
    resolution: int = DEFAULT_RESOLUTION,
    margin: float = DEFAULT_MARGIN,
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
    n_examples: int | None = None,
    memory_budget: int | None = None,
    num_threads: NumThreads = None,
    extra_paths: list[np.ndarray] | None = None,
    strategy: str = "auto",
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    distributed: bool | None = None,
    stream: bool | None = None,
    subset_seed: int = 0,
    bn: str = "eval",
    precision: str | None = None,
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
        device: where to compute; default CPU.
        chunk_size: grid points evaluated at once; default: as many as ``memory_budget`` allows.
        n_examples: evaluate on the first ``n_examples`` examples only (default: all).
        memory_budget: bytes of activations one chunk may use (default by device:
            :data:`DEFAULT_MEMORY_BUDGET`).
        num_threads: CPU threads (restored afterwards): a count, ``"auto"`` (one thread when one
            forward pass over a data batch touches less than ``SMALL_WORK_BYTES`` of
            activations) or None (torch's setting, the default: threads change only when asked).
        extra_paths: more (T, 2) paths the grid must cover (other optimizers on the same plane).
        strategy: how chunks of points are evaluated (see :class:`LossEvaluator`); every
            strategy gives the same values to rounding.
        progress: show a progress bar.
        checkpoint: a file (``.npz``) that finished chunks of ``chunk_size`` points are saved to
            as they complete, with what identifies the job (plane, resolution, margin, data,
            model layout and buffers, precision). Rerun with the same file after a crash or a
            kill: only the missing points are computed, and the grid is the same. A file of
            another job is refused with an error that says what differs.
        distributed: under ``torch.distributed`` (None: whenever a process group is
            initialised), each rank evaluates only its share of the chunks, on its own device
            (``cuda:LOCAL_RANK`` with no ``device``), and every rank returns the whole grid, the
            same as one process's. Every rank must call with the same arguments; rank 0 writes
            the checkpoint. False: this process alone.
        stream: read the data from their dataset for every chunk of points, in fixed batches,
            instead of holding them in memory (None: for a dataset that is not a
            ``TensorDataset`` and is larger than 2 GiB). Streamed, ``n_examples`` takes a subset
            chosen once from ``subset_seed``.
        subset_seed: the seed of that subset.
        bn: BatchNorm statistics at each point: ``"eval"`` (default: the model's running
            statistics, those training accumulated near the trained weights) or ``"recompute"``
            (re-estimated at each point from the first 1,024 examples of ``data``, so each point
            is normalised by statistics of its own weights; one point at a time).
        precision: None (default: the model's dtype), ``"bf16"`` or ``"fp16"`` (GPUs): the
            products of a float32 model run under autocast in that dtype, recorded as
            ``LossGrid.precision``. Faster where the hardware has the dtype (GPUs, CPUs with
            AVX-512 BF16 or AMX); the README gives the largest error against float32 measured.
    """
    resolution, margin = check_grid_arguments(resolution, margin)
    evaluator = LossEvaluator(
        model,
        data,
        device=device,
        n_examples=n_examples,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        num_threads=num_threads,
        strategy=strategy,
        distributed=distributed,
        stream=stream,
        subset_seed=subset_seed,
        bn=bn,
        precision=precision,
    )
    xs, ys = grid_axes([plane.path_2d, *(extra_paths or [])], resolution, margin)
    XX, YY = np.meshgrid(xs, ys)
    coords = np.stack([XX.ravel(), YY.ravel()], axis=1)
    job = {
        "what": "loss grid",
        "plane": plane.fingerprint(),
        "resolution": resolution,
        "margin": margin,
    }
    losses = evaluator.plane_losses(
        plane.origin,
        plane.directions,
        coords,
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
