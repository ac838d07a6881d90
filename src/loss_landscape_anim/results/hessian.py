"""``HessianSpectrum`` and ``HessianTrace``: the curvature of the loss at one weight vector."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import load_npz, save_npz

__all__ = ["HessianSpectrum", "HessianTrace"]


@dataclass(frozen=True, eq=False)
class HessianSpectrum:
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

    @property
    def k(self) -> int:
        return int(self.largest.shape[0])

    def save(self, path: str | os.PathLike) -> Path:
        arrays = {
            "largest": self.largest,
            "smallest": self.smallest,
            "largest_vectors": self.largest_vectors,
            "smallest_vectors": self.smallest_vectors,
        }
        meta = {
            "n_products": self.n_products,
            "n_examples": self.n_examples,
            "precision": self.precision,
            "operator": self.operator,
        }
        return save_npz(path, "HessianSpectrum", arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> HessianSpectrum:
        arrays, meta = load_npz(path, "HessianSpectrum")
        return cls(
            arrays["largest"],
            arrays["smallest"],
            arrays.get("largest_vectors"),
            arrays.get("smallest_vectors"),
            int(meta.get("n_products", 0)),
            meta.get("n_examples"),
            meta.get("precision"),
            meta.get("operator", "hessian"),
        )


@dataclass(frozen=True)
class HessianTrace:
    """A randomised estimate of the trace of the Hessian (or ``operator``): Hutchinson's (1989),
    the mean of ``v^T H v`` over random Rademacher vectors ``v`` (entries +1 or -1), whose
    expectation is the trace; or Hutch++ (Meyer et al. 2021), which takes the trace of the top of
    the spectrum exactly and Hutchinson's estimate of the rest.

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

    def save(self, path: str | os.PathLike) -> Path:
        meta = {
            "estimate": self.estimate,
            "stderr": self.stderr,
            "n_samples": self.n_samples,
            "n_examples": self.n_examples,
            "method": self.method,
            "operator": self.operator,
        }
        return save_npz(path, "HessianTrace", {}, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> HessianTrace:
        _, meta = load_npz(path, "HessianTrace")
        return cls(
            float(meta.get("estimate", math.nan)),
            float(meta.get("stderr", math.nan)),
            int(meta.get("n_samples", 0)),
            meta.get("n_examples"),
            meta.get("method", "hutchinson"),
            meta.get("operator", "hessian"),
        )
