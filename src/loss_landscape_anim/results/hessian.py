"""``HessianSpectrum`` and ``HessianTrace``: the curvature of the loss at one weight vector."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ._base import Result
from ._checks import array_field, check_finite, optional_number, optional_str

__all__ = ["HessianSpectrum", "HessianTrace"]


@dataclass(frozen=True, eq=False)
class HessianSpectrum(Result):
    """Extreme eigenvalues of the Hessian of the mean loss at one weight vector.

    Attributes:
        largest: (k,) the k largest eigenvalues, descending.
        smallest: (k,) the k smallest eigenvalues, ascending (the most negative first).
        largest_vectors: (k, P) their unit eigenvectors, flat in ``model.parameters()`` order
            (None unless asked for); row i belongs to ``largest[i]``.
        smallest_vectors: (k, P) likewise for ``smallest``.
        n_products: Hessian-vector products the solver used.
        n_examples: how many examples the loss is the mean over (None: unknown).
        precision: the dtype the products were computed in (None: unknown).
        operator: the matrix: ``"hessian"``, ``"ggn"`` (generalised Gauss-Newton) or
            ``"fisher"`` (empirical Fisher).
    """

    largest: np.ndarray
    smallest: np.ndarray
    largest_vectors: np.ndarray | None = None
    smallest_vectors: np.ndarray | None = None
    n_products: int = 0
    n_examples: int | None = None
    precision: str | None = None
    operator: str = "hessian"

    ARRAYS = ("largest", "smallest", "largest_vectors", "smallest_vectors")
    REQUIRED = ("largest", "smallest")

    def __post_init__(self) -> None:
        largest = array_field(self.largest, "largest", (None,))
        k = largest.shape[0]
        smallest = array_field(self.smallest, "smallest", (k,))
        for name, values in (("largest", largest), ("smallest", smallest)):
            check_finite(values, name)
            object.__setattr__(self, name, values)
        if k > 1 and not (np.all(np.diff(largest) <= 0) and np.all(np.diff(smallest) >= 0)):
            raise ValueError(
                f"Expected largest descending and smallest ascending but got {largest} and "
                f"{smallest}"
            )
        for name in ("largest_vectors", "smallest_vectors"):
            vectors = getattr(self, name)
            if vectors is not None:
                vectors = array_field(vectors, name, (k, None))
                check_finite(vectors, name)
                object.__setattr__(self, name, vectors)
        n_products = optional_number(self.n_products, "n_products", low=0, integer=True)
        object.__setattr__(self, "n_products", n_products or 0)
        n_examples = optional_number(self.n_examples, "n_examples", low=1, integer=True)
        object.__setattr__(self, "n_examples", n_examples)
        optional_str(self.precision, "precision")
        if not isinstance(self.operator, str):
            raise TypeError(f"Expected operator to be a string but got {self.operator!r}")

    @property
    def k(self) -> int:
        return int(self.largest.shape[0])


@dataclass(frozen=True)
class HessianTrace(Result):
    """A randomised estimate of the trace of the Hessian (or ``operator``): Hutchinson's (1989),
    the mean of ``v^T H v`` over random Rademacher vectors ``v`` (entries +1 or -1), whose
    expectation is the trace; or Hutch++ (Meyer et al. 2021), which takes the trace of the top of
    the spectrum exactly and Hutchinson's estimate of the rest. Its fields are numbers, so two
    traces compare with ``==`` (results with arrays do not).

    Attributes:
        estimate: the estimate of the trace.
        stderr: its standard error (Hutchinson: sample standard deviation over
            sqrt(n_samples); Hutch++: that of its Hutchinson part).
        n_samples: the number of matrix-vector products spent.
        n_examples: how many examples the loss is the mean over (None: unknown).
        method: ``"hutchinson"`` or ``"hutch++"``.
        operator: ``"hessian"``, ``"ggn"`` or ``"fisher"``.
    """

    estimate: float
    stderr: float
    n_samples: int
    n_examples: int | None = None
    method: str = "hutchinson"
    operator: str = "hessian"

    def __post_init__(self) -> None:
        for name in ("estimate", "stderr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"Expected {name} to be a number but got {value!r}")
            object.__setattr__(self, name, float(value))
        if not (self.stderr >= 0 or math.isnan(self.stderr)):
            raise ValueError(f"Expected stderr to be >= 0 but got {self.stderr}")
        n_samples = optional_number(self.n_samples, "n_samples", low=1, integer=True)
        if n_samples is None:
            raise TypeError("Expected n_samples to be a positive integer but got None")
        object.__setattr__(self, "n_samples", n_samples)
        n_examples = optional_number(self.n_examples, "n_examples", low=1, integer=True)
        object.__setattr__(self, "n_examples", n_examples)
        for name in ("method", "operator"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"Expected {name} to be a string but got {getattr(self, name)!r}")
