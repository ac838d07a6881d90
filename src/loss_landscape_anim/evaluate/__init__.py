"""Evaluating many weight vectors: a shared preparation (a functional copy of the model and the
evaluation data, prepared once), strategies (how one chunk of points is evaluated), a schedule
(which points in which chunk, chunks outermost, on which rank, what a checkpoint holds), and the
two evaluators built on them: :class:`LossEvaluator` (the mean loss) and
:class:`CurvatureEvaluator` (Hessian-vector products and eigenvalues)."""

from .budgets import DEFAULT_MEMORY_BUDGET
from .curvature import CurvatureEvaluator
from .evaluator import LossEvaluator
from .functional import FunctionalModel
from .preparation import Preparation
from .strategies import STRATEGIES

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "STRATEGIES",
    "CurvatureEvaluator",
    "FunctionalModel",
    "LossEvaluator",
    "Preparation",
]
