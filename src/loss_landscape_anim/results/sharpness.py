"""``Sharpness``: how much the loss rises when the weights are perturbed within a radius, in the
worst case or on average (Andriushchenko et al. 2023)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._base import Result
from ._checks import optional_number, optional_str

__all__ = ["SHARPNESS_KINDS", "SHARPNESS_NORMS", "Sharpness"]

#: ``"adaptive"``: perturbations scaled elementwise by ``|w|``; ``"standard"``: not scaled.
SHARPNESS_KINDS = ("adaptive", "standard")
#: The norm of the perturbation's ball.
SHARPNESS_NORMS = ("l2", "linf")


@dataclass(frozen=True, eq=False)
class Sharpness(Result):
    """The sharpness of the mean loss at one weight vector ``w`` (Andriushchenko, Croce, Müller,
    Hein & Flammarion 2023, *A Modern Look at the Relationship between Sharpness and
    Generalization*): ``max`` (worst case) or mean (average case) of ``L(w + delta) - L(w)`` over
    perturbations ``delta = c * u`` with ``||u|| <= rho`` in the chosen norm, where ``c = |w|``
    elementwise (adaptive; Kwon et al. 2021) or 1 (standard).

    Attributes:
        value: the sharpness, in loss units.
        stderr: its standard error over the random perturbations (average case); NaN for the
            worst case, a lower bound found by gradient ascent.
        rho: the radius of the ball.
        kind: ``"adaptive"`` or ``"standard"``.
        norm: ``"l2"`` or ``"linf"``.
        worst_case: True for the worst case, False for the average case.
        loss: the unperturbed loss ``L(w)``.
        delta_norm: the L2 norm of the perturbation in weight units: of the worst one found
            (worst case), or the mean over the samples (average case).
        n_iterations: gradient-ascent steps (worst case) or random perturbations (average case).
        n_examples: how many examples the loss is the mean over (None: unknown).
        precision: the dtype the losses were computed in (None: unknown).
    """

    value: float
    stderr: float
    rho: float
    kind: str
    norm: str
    worst_case: bool
    loss: float
    delta_norm: float
    n_iterations: int
    n_examples: int | None = None
    precision: str | None = None

    REQUIRED_META = ("value", "stderr", "rho", "sharpness_kind", "norm", "worst_case", "loss")

    def __post_init__(self) -> None:
        for name in ("value", "rho", "loss", "delta_norm"):
            if optional_number(getattr(self, name), name) is None:
                raise TypeError(f"Expected {name} to be a finite number but got None")
        if not isinstance(self.stderr, float | int) or math.isinf(self.stderr):
            raise TypeError(f"Expected stderr to be a finite number or NaN but got {self.stderr!r}")
        if self.rho <= 0:
            raise ValueError(f"Expected rho to be > 0 but got {self.rho!r}")
        if self.kind not in SHARPNESS_KINDS:
            raise ValueError(f"Expected kind to be one of {SHARPNESS_KINDS} but got {self.kind!r}")
        if self.norm not in SHARPNESS_NORMS:
            raise ValueError(f"Expected norm to be one of {SHARPNESS_NORMS} but got {self.norm!r}")
        if not isinstance(self.worst_case, bool):
            raise TypeError(f"Expected worst_case to be a bool but got {self.worst_case!r}")
        optional_number(self.n_iterations, "n_iterations", low=0, integer=True)
        optional_number(self.n_examples, "n_examples", low=1, integer=True)
        optional_str(self.precision, "precision")

    @property
    def perturbed_loss(self) -> float:
        """``loss + value``: the worst (or mean) loss in the ball."""
        return self.loss + self.value

    @property
    def label(self) -> str:
        """A short name of the measure, e.g. ``"worst-case adaptive l2, rho=0.05"``."""
        case = "worst-case" if self.worst_case else "average-case"
        return f"{case} {self.kind} {self.norm}, rho={self.rho:g}"

    def _saved(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = super()._saved()
        meta["sharpness_kind"] = meta.pop("kind")  # "kind" names the result type in every file
        return arrays, meta

    @classmethod
    def _from_saved(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Sharpness:
        meta = {**meta, "kind": meta.get("sharpness_kind")}
        return super()._from_saved(arrays, meta)
