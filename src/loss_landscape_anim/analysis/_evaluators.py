"""How every analysis gets its evaluator: one already built (``evaluator=``), or a new one of
``model`` and ``data`` with the evaluator options. A loss analysis given a curvature evaluator
(or the other way round) builds its own on the same preparation: no second model copy, no
second reading of the data."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..evaluate import CurvatureEvaluator, FunctionalModel, LossEvaluator, Preparation

__all__ = ["check_spans", "curvature_evaluator", "loss_evaluator", "require"]

Evaluator = LossEvaluator | CurvatureEvaluator | Preparation


def loss_evaluator(
    model: Any, data: Any, evaluator: Evaluator | None, options: dict[str, Any]
) -> LossEvaluator:
    """``evaluator`` when it is a :class:`LossEvaluator`; a loss evaluator on its preparation
    when it is another evaluator or a preparation; else ``LossEvaluator(model, data,
    **options)``."""
    if evaluator is None:
        _check_model_and_data(model, data)
        return LossEvaluator(model, data, **options)
    _check_alone(evaluator, model, data, options)
    return evaluator if isinstance(evaluator, LossEvaluator) else LossEvaluator(evaluator)


def curvature_evaluator(
    model: Any, data: Any, evaluator: Evaluator | None, options: dict[str, Any]
) -> CurvatureEvaluator:
    """As :func:`loss_evaluator`, for a :class:`CurvatureEvaluator`."""
    if evaluator is None:
        _check_model_and_data(model, data)
        return CurvatureEvaluator(model, data, **options)
    _check_alone(evaluator, model, data, options)
    if isinstance(evaluator, CurvatureEvaluator):
        return evaluator
    return CurvatureEvaluator(evaluator)


def check_spans(
    target: LossEvaluator | CurvatureEvaluator | FunctionalModel, **results: Any
) -> None:
    """Raise :class:`~loss_landscape_anim.errors.IncompatibleFileError` unless each result
    (a plane or trajectory, by name) that knows its parameter layout spans the parameters of
    ``target``'s model (an evaluator's, or a functional model), tensor by tensor, naming both
    sets of tensors (see :meth:`~loss_landscape_anim.params.layout.ParamLayout.check_spans`).
    The one check of every analysis where a plane or path meets a model; a plane saved without
    its layout is checked by its count only (where the weights are evaluated)."""
    model = target if isinstance(target, FunctionalModel) else target.model
    for name, result in results.items():
        layout = getattr(result, "layout", None)
        if layout is not None:
            layout.check_spans(model.layout, f"the {name}")


def require(value: Any, name: str, kind: type) -> Any:
    """``value`` if it is a ``kind`` (a required argument that follows optional ones)."""
    if not isinstance(value, kind):
        raise TypeError(f"Expected {name} to be a {kind.__name__} but got {type(value).__name__}")
    return value


def _check_model_and_data(model: Any, data: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"Expected model to be a torch.nn.Module but got {type(model).__name__} (or pass "
            "evaluator=, an evaluator already built)"
        )
    if data is None:
        raise TypeError("Expected the evaluation data (or evaluator=) but got data=None")


def _check_alone(evaluator: Any, model: Any, data: Any, options: dict[str, Any]) -> None:
    if not isinstance(evaluator, LossEvaluator | CurvatureEvaluator | Preparation):
        raise TypeError(
            f"Expected evaluator to be a LossEvaluator, CurvatureEvaluator or Preparation but "
            f"got {type(evaluator).__name__}"
        )
    extra = [name for name, value in (("model", model), ("data", data)) if value is not None]
    extra += sorted(options)
    if extra:
        raise ValueError(
            f"Expected either evaluator= or the model, data and evaluator options, but got "
            f"evaluator= with {', '.join(extra)}: an evaluator already has its model, data and "
            "options"
        )
