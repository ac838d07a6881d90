"""``loss_along_curve``: the loss and accuracy at points of a :class:`Curve`, and its barrier. A thin
user of :class:`~loss_landscape_anim.evaluate.LossEvaluator`."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from .._validate import check_choice, check_positive_int
from ..evaluate import LossEvaluator
from ..evaluate.probes import has_batch_norm
from ..params.layout import ParamLayout
from ..results import Curve, LossLine

__all__ = ["CURVE_BN_MODES", "loss_along_curve"]

#: How BatchNorm statistics are taken at each point of a curve.
CURVE_BN_MODES = ("recompute", "eval")


def loss_along_curve(
    model: nn.Module | None = None,
    data: Any = None,
    curve: Curve | None = None,
    *,
    n_points: int = 61,
    bn: str = "recompute",
    row: int = -1,
    accuracy: bool = True,
    evaluator: LossEvaluator | None = None,
    **evaluator_options: Any,
) -> LossLine:
    """The loss and accuracy over ``data`` at ``curve.point(t)`` for ``n_points`` values of ``t``
    evenly spaced over [0, 1] (both ends included).

    The result is a :class:`LossLine` whose ``alphas`` are the values of ``t``; its ``barrier`` is
    the curve's barrier: the largest excess over ``t`` of the loss above the straight line
    between the losses of the two ends (Garipov et al. 2018; Frankle et al. 2020).

    BatchNorm: the running statistics a network carries were accumulated at its own weights; a
    point of the curve between two networks has weights of its own, and normalising it with
    either end's statistics (or the model's) makes it look far worse than it is. With
    ``bn="recompute"`` (the default) the statistics are re-estimated at every point from the
    first 1,024 examples of ``data`` before its loss is evaluated, as Garipov et al. do (users
    of their code who skip it report curve ends that disagree with the trained networks).
    ``bn="eval"`` keeps the model's running statistics at every point. A model without BatchNorm
    gives the same values either way.

    Args:
        model: supplies the architecture, buffers and ``loss_fn``; its weights are not used.
        data: the evaluation data (a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``).
        curve: from :func:`connect` (or built by hand).
        n_points: values of ``t`` (>= 2).
        bn: ``"recompute"`` or ``"eval"`` (see above).
        row: the bends of this row of ``curve.history`` (default: the final bends), to follow
            the curve while it trains.
        accuracy: also evaluate the accuracy (one more pass over the data per point); False
            leaves it NaN.
        evaluator: a :class:`LossEvaluator` already built, instead of ``model``, ``data`` and
            ``evaluator_options`` (its ``bn`` must match).
        evaluator_options: for :class:`LossEvaluator` (``device``, ``n_examples``...).
    """
    if not isinstance(curve, Curve):
        raise TypeError(f"Expected curve to be a Curve but got {type(curve).__name__}")
    n_points = check_positive_int(n_points, "n_points")
    if n_points < 2:
        raise ValueError(f"Expected n_points to be at least 2 but got {n_points}")
    bn = check_choice(bn, "bn", CURVE_BN_MODES)
    architecture = evaluator.model.module if isinstance(evaluator, LossEvaluator) else model
    if not isinstance(architecture, nn.Module):
        raise TypeError(f"Expected model to be a torch.nn.Module but got {type(model).__name__}")
    n_params = ParamLayout.of(architecture).n_params
    if curve.n_params != n_params:
        raise ValueError(
            f"Expected a curve of {n_params} weights (the model's parameter count) but the "
            f"curve has {curve.n_params}"
        )
    mode = "recompute" if bn == "recompute" and has_batch_norm(architecture) else "eval"
    evaluator = curve_evaluator(model, data, mode, evaluator, evaluator_options)
    ts = np.linspace(0.0, 1.0, n_points)
    weights = curve.points(ts, row)
    loss = evaluator.weight_losses(weights)
    correct = evaluator.weight_accuracies(weights) if accuracy else np.full(n_points, np.nan)
    return LossLine(ts, loss, correct, curve.labels, evaluator.n_examples)


def curve_evaluator(
    model: nn.Module | None,
    data: Any,
    bn: str,
    evaluator: LossEvaluator | None,
    options: dict[str, Any],
) -> LossEvaluator:
    """The evaluator given (checked against ``bn``), or a new one with ``options``."""
    if evaluator is None:
        return LossEvaluator(model, data, bn=bn, **options)  # type: ignore[arg-type]
    if not isinstance(evaluator, LossEvaluator):
        raise TypeError(
            f"Expected evaluator to be a LossEvaluator but got {type(evaluator).__name__}"
        )
    extra = [name for name, value in (("model", model), ("data", data)) if value is not None]
    if extra or options:
        raise ValueError(
            "Expected either evaluator= or the model, data and evaluator options, but got "
            f"evaluator= with {', '.join(extra + sorted(options))}: an evaluator already has "
            "its model, data and options"
        )
    if evaluator.bn != bn:
        raise ValueError(
            f"Expected an evaluator with bn={bn!r} but got one with bn={evaluator.bn!r}"
        )
    return evaluator
