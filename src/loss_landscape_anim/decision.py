"""Decision regions of a 2-input classifier along its path, for the animation's side panel."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from ._layout import ParamLayout
from ._runtime import default_threads, resolve_device, torch_threads
from ._validate import check_positive_int
from .data import materialize
from .trajectory import Trajectory

__all__ = ["DecisionRegions", "decision_regions"]


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


def decision_regions(
    model: nn.Module,
    data: Any,
    trajectory: Trajectory,
    rows: np.ndarray,
    *,
    resolution: int = 80,
    margin: float = 0.1,
    max_points: int = 300,
    device: str | torch.device | None = None,
) -> DecisionRegions:
    """Classify a ``resolution`` x ``resolution`` grid of the input plane with the weights of each
    of ``rows`` of the trajectory. Needs a model on 2-D inputs with class logits (N, C)."""
    resolution = check_positive_int(resolution, "resolution")
    torch_device = resolve_device(device)
    X, y = materialize(data)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(
            f"Decision regions need 2-D inputs (N, 2) but the data have shape {tuple(X.shape)}"
        )
    low, high = X.min(0).values.numpy(), X.max(0).values.numpy()
    pad = margin * (high - low)
    gx = np.linspace(low[0] - pad[0], high[0] + pad[0], resolution)
    gy = np.linspace(low[1] - pad[1], high[1] + pad[1], resolution)
    GX, GY = np.meshgrid(gx, gy)
    dtype = next(model.parameters()).dtype
    inputs = torch.tensor(np.stack([GX.ravel(), GY.ravel()], 1), dtype=dtype, device=torch_device)
    layout = ParamLayout.of(model)
    work = copy.deepcopy(model).to(torch_device).eval()

    def predict(params: dict) -> torch.Tensor:
        return functional_call(work, params, (inputs,)).argmax(dim=1)

    images = []
    with torch.no_grad(), torch_threads(default_threads(layout.n_params, torch_device)):
        rows = np.asarray(rows)
        for lo in range(0, len(rows), 16):
            W = torch.as_tensor(
                np.asarray(trajectory.params[rows[lo : lo + 16]]),
                dtype=dtype,
                device=torch_device,
            )
            images.append(torch.vmap(predict)(layout.unflatten(W)).cpu())
    classes = torch.cat(images).reshape(len(rows), resolution, resolution).numpy().astype(np.uint8)
    keep = np.linspace(0, len(X) - 1, min(len(X), max_points)).astype(int)
    n_classes = int(getattr(model, "num_classes", None) or int(y.max()) + 1)
    return DecisionRegions(
        np.asarray(rows),
        classes,
        (gx[0], gx[-1], gy[0], gy[-1]),
        X.numpy()[keep],
        y.numpy()[keep],
        n_classes,
    )
