"""1D interpolation: the loss along the straight line between two weight vectors (Goodfellow et
al. 2015), and the loss barrier between two solutions (Frankle et al. 2020). A thin user of
:class:`~loss_landscape_anim.evaluate.LossEvaluator`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .._validate import check_positive_int, check_positive_number
from ..evaluate import LossEvaluator
from ..params.layout import ParamLayout
from ..results import LossLine
from ._evaluators import loss_evaluator

__all__ = ["line_alphas", "loss_along_line"]


def loss_along_line(
    model: nn.Module | None = None,
    data: Any = None,
    start: Any = None,
    end: Any = None,
    *,
    n_points: int = 51,
    margin: float = 0.0,
    labels: tuple[str, str] = ("start", "end"),
    evaluator: LossEvaluator | None = None,
    **evaluator_options: Any,
) -> LossLine:
    """The loss and accuracy over ``data`` at ``start + alpha * (end - start)``.

    Args:
        model: supplies the architecture (and ``loss_fn``); its own weights are not used.
        data: the evaluation data (a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``).
        start, end: the two ends: flat weight vectors of the model's parameter count (arrays,
            tensors, e.g. rows of a :class:`Trajectory`) or models of the same architecture.
        n_points: points from ``start`` to ``end``, both included (>= 2).
        margin: extend the line by this share of its length beyond each end, at the same
            spacing (alphas from ``-margin`` to ``1 + margin``).
        labels: names of the two ends, for plots.
        evaluator: a :class:`LossEvaluator` already built (or another evaluator or preparation
            to share), instead of ``model``, ``data`` and ``evaluator_options``.
        evaluator_options: for :class:`LossEvaluator` (``device``, ``n_examples``,
            ``chunk_size``, ``num_threads``...).

    Returns:
        A :class:`LossLine`; ``line.barrier`` is the loss barrier between the two ends.
    """
    n_points = check_positive_int(n_points, "n_points")
    if n_points < 2:
        raise ValueError(f"Expected n_points to be at least 2 but got {n_points}")
    margin = check_positive_number(margin, "margin", allow_zero=True)
    evaluator = loss_evaluator(model, data, evaluator, evaluator_options)
    layout = evaluator.model.layout
    a = _flat(start, layout, "start")
    b = _flat(end, layout, "end")
    alphas = line_alphas(n_points, margin)
    weights = a[None, :] + alphas[:, None] * (b - a)[None, :]
    loss = evaluator.weight_losses(weights)
    accuracy = evaluator.weight_accuracies(weights)
    return LossLine(alphas, loss, accuracy, (str(labels[0]), str(labels[1])), evaluator.n_examples)


def line_alphas(n_points: int, margin: float) -> np.ndarray:
    """``n_points`` alphas evenly spaced from 0 to 1 (both exact), extended at the same spacing
    by ``margin`` (a share of the line's length) beyond each end."""
    step = 1.0 / (n_points - 1)
    extra = math.ceil(margin / step - 1e-9) if margin > 0 else 0
    alphas = np.arange(-extra, n_points + extra, dtype=np.float64) * step
    alphas[extra] = 0.0
    alphas[extra + n_points - 1] = 1.0  # exact, whatever the rounding of k * step
    return alphas


def _flat(value: Any, layout: ParamLayout, name: str) -> np.ndarray:
    """``value`` as a float64 flat weight vector of ``layout``'s parameter count."""
    if isinstance(value, nn.Module):
        return layout.flatten(value).cpu().numpy().astype(np.float64)
    try:
        flat = np.asarray(torch.as_tensor(value).detach().cpu(), dtype=np.float64).ravel()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(
            f"Expected {name} to be a flat weight vector or a model but got "
            f"{type(value).__name__}: {exc}"
        ) from None
    if flat.shape[0] != layout.n_params:
        raise ValueError(
            f"Expected {name} to have {layout.n_params} entries (the model's parameter count) "
            f"but got {flat.shape[0]}"
        )
    if not np.isfinite(flat).all():
        raise ValueError(f"Expected {name} to be finite but it has NaN or inf")
    return flat
