"""Tolerances from an error estimate: machine epsilon times the scale of the numbers involved.

A fixed tiny tolerance (or an exact zero) passes on one BLAS and torch version and fails on another,
where the same sums are taken in another order. These bounds follow the usual forward error of a
sum of ``n`` terms (Higham, *Accuracy and Stability of Numerical Algorithms*, sec. 3.1: at most
``n * eps`` times the sum of the magnitudes), with a safety factor.
"""

from __future__ import annotations

import numpy as np

EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
#: Headroom over the first-order bound (rounding of the inputs, a few more operations).
SAFETY = 4.0


def sum_tolerance(scale: float, n: int, eps: float = EPS64) -> float:
    """Absolute error bound of a sum (or dot product) of ``n`` terms whose magnitudes add up to
    at most ``scale``, computed in any order."""
    return SAFETY * max(n, 1) * eps * float(scale)


def distance_tolerance(sq_norm: float, n: int, eps: float = EPS64) -> float:
    """Absolute error of a distance computed as ``sqrt(|x|^2 - |projection of x|^2)`` for vectors
    of ``n`` entries with ``|x|^2 <= sq_norm``: the difference of squares carries an error of about
    ``n * eps * |x|^2``, so a true distance of 0 can come out as ``sqrt(n * eps) * |x|``."""
    return float(np.sqrt(sum_tolerance(sq_norm, n, eps)))
