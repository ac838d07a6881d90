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

__all__ = ["MAX_LINE_POINTS", "check_labels", "line_alphas", "loss_along_line"]


#: The most points a line may have (``n_points`` plus the margin's), each a pass over the data.
MAX_LINE_POINTS = 100_000
#: Bytes of flat weight vectors made at once: the line's points are evaluated in blocks of rows.
WEIGHT_BLOCK_BYTES = 64 * 2**20


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
        margin: extend the line by this share of its length beyond each end: alphas from
            exactly ``-margin`` to exactly ``1 + margin`` (see :func:`line_alphas`). With
            ``n_points``, at most :data:`MAX_LINE_POINTS` points in all.
        labels: names of the two ends, for plots: a pair of strings.
        evaluator: a :class:`LossEvaluator` already built (or another evaluator or preparation
            to share), instead of ``model``, ``data`` and ``evaluator_options``.
        evaluator_options: for :class:`LossEvaluator` (``device``, ``n_examples``,
            ``chunk_size``, ``num_threads``...).

    Returns:
        A :class:`LossLine`; ``line.barrier`` is the loss barrier between the two ends.
    """
    labels = check_labels(labels)
    alphas = line_alphas(n_points, margin)
    evaluator = loss_evaluator(model, data, evaluator, evaluator_options)
    layout = evaluator.model.layout
    a = _flat(start, layout, "start")
    b = _flat(end, layout, "end")
    loss = np.empty(len(alphas))
    accuracy = np.empty(len(alphas))
    rows = max(1, WEIGHT_BLOCK_BYTES // (8 * layout.n_params))
    for first in range(0, len(alphas), rows):
        block = slice(first, first + rows)
        weights = a[None, :] + alphas[block, None] * (b - a)[None, :]
        loss[block] = evaluator.weight_losses(weights)
        accuracy[block] = evaluator.weight_accuracies(weights)
    return LossLine(alphas, loss, accuracy, labels, evaluator.n_examples)


def line_alphas(n_points: int, margin: float) -> np.ndarray:
    """``n_points`` alphas evenly spaced from 0 to 1 (both exact), extended beyond each end to
    exactly ``-margin`` and ``1 + margin`` (a share of the line's length): at the same spacing,
    except the outermost gap, between half and one and a half of it (or ``margin`` itself when
    that is less than half the spacing).

    >>> line_alphas(5, 0.5).tolist()
    [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    >>> line_alphas(11, 0.25)[:4].tolist()
    [-0.25, -0.2, -0.1, 0.0]
    """
    n_points = check_positive_int(n_points, "n_points")
    if n_points < 2:
        raise ValueError(f"Expected n_points to be at least 2 but got {n_points}")
    margin = check_positive_number(margin, "margin", allow_zero=True)
    step = 1.0 / (n_points - 1)
    extra = max(1, math.floor(margin / step + 0.5)) if margin > 0 else 0
    total = n_points + 2 * extra
    if total > MAX_LINE_POINTS:
        raise ValueError(
            f"Expected n_points={n_points} and margin={margin!r} to give at most "
            f"{MAX_LINE_POINTS:,} points along the line but they give {total:,} (the margin is a "
            "share of the line's length): use a smaller margin or fewer points"
        )
    inside = np.arange(n_points, dtype=np.float64) * step
    inside[-1] = 1.0  # exact, whatever the rounding of k * step
    beyond = np.arange(1, extra, dtype=np.float64) * step
    return np.concatenate(
        [
            [-margin] if extra else [],
            -beyond[::-1],
            inside,
            1.0 + beyond,
            [1.0 + margin] if extra else [],
        ]
    )


def check_labels(labels: Any) -> tuple[str, str]:
    """``labels`` as a pair of strings: the names of a line's two ends."""
    if isinstance(labels, (str, bytes)) or not isinstance(labels, (tuple, list)):
        raise TypeError(
            f"Expected labels to be a pair of names (start, end) but got {type(labels).__name__} "
            f"{labels!r}"
        )
    if len(labels) != 2 or not all(isinstance(name, str) for name in labels):
        raise ValueError(
            f"Expected labels to be two strings, the names of start and end, but got {labels!r}"
        )
    return (labels[0], labels[1])


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
