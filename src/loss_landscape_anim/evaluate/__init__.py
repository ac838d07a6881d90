"""Evaluating many weight vectors: an autograd-safe functional model, strategies (how one chunk of
points is evaluated), a schedule (which points in which chunk, chunks outermost), and
:class:`LossEvaluator`, which chooses a strategy once and runs the schedule."""

from .evaluator import DEFAULT_MEMORY_BUDGET, LossEvaluator
from .functional import FunctionalModel
from .strategies import STRATEGIES

__all__ = ["DEFAULT_MEMORY_BUDGET", "STRATEGIES", "FunctionalModel", "LossEvaluator"]
