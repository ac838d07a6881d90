"""``LossGrid``: the loss on a regular grid of plane coordinates."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._io import reading
from ..errors import IncompatibleFileError
from ._base import Result
from ._checks import array_field, check_finite, check_increasing, optional_number, optional_str
from .plane import Plane

__all__ = ["LossGrid"]


@dataclass(frozen=True, eq=False)
class LossGrid(Result):
    """Loss values on a regular grid of plane coordinates, with what they were computed from.

    Attributes:
        xs: (R,) coordinates along direction 0.
        ys: (R,) coordinates along direction 1.
        loss: (R, R) mean loss over the evaluation data; ``loss[i, j]`` is at ``(xs[j], ys[i])``,
            as matplotlib's ``contour`` expects. Non-finite where the model's loss is.
        loss_min: the smallest finite value of ``loss`` (NaN when none is finite).
        argmin: (2,) the ``(x, y)`` of that grid point.
        margin: the room left around the path(s), as a share of their extent (None: unknown).
        n_examples: how many examples each loss is the mean over (None: unknown).
        precision: the dtype the losses were computed in, e.g. ``"float32"`` or ``"bfloat16"``
            under autocast (None: unknown).
        plane_fingerprint: :meth:`Plane.fingerprint` of the plane the grid lies on (None:
            unknown); :meth:`check_plane` compares it.
    """

    xs: np.ndarray
    ys: np.ndarray
    loss: np.ndarray
    loss_min: float
    argmin: np.ndarray
    margin: float | None = None
    n_examples: int | None = None
    precision: str | None = None
    plane_fingerprint: str | None = None

    ARRAYS = ("xs", "ys", "loss")
    REQUIRED = ARRAYS
    DERIVED = ("loss_min", "argmin")

    def __post_init__(self) -> None:
        xs = array_field(self.xs, "xs", (None,))
        ys = array_field(self.ys, "ys", (None,))
        for name, axis in (("xs", xs), ("ys", ys)):
            if axis.shape[0] < 2:
                raise ValueError(f"Expected {name} to hold at least 2 coordinates but got {axis}")
            check_finite(axis, name)
            check_increasing(axis, name)
        loss = array_field(self.loss, "loss", (ys.shape[0], xs.shape[0]))
        argmin = array_field(self.argmin, "argmin", (2,))
        for name, value in (("xs", xs), ("ys", ys), ("loss", loss), ("argmin", argmin)):
            object.__setattr__(self, name, value)
        self._check_minimum()
        object.__setattr__(self, "margin", optional_number(self.margin, "margin", low=0))
        object.__setattr__(
            self, "n_examples", optional_number(self.n_examples, "n_examples", low=1, integer=True)
        )
        optional_str(self.precision, "precision")
        optional_str(self.plane_fingerprint, "plane_fingerprint")

    def _check_minimum(self) -> None:
        """``loss_min`` and ``argmin`` must be the smallest finite loss and where it is."""
        finite = self.loss[np.isfinite(self.loss)]
        low = float(finite.min()) if finite.size else math.nan
        loss_min = self.loss_min
        if not isinstance(loss_min, (float, np.floating)) or not (
            loss_min == low or (math.isnan(loss_min) and math.isnan(low))
        ):
            raise ValueError(
                f"Expected loss_min to be the smallest finite loss of the grid ({low}) "
                f"but got {loss_min!r}"
            )
        if finite.size and not np.isfinite(self.argmin).all():
            raise ValueError(f"Expected argmin to be a grid point but got {self.argmin}")
        object.__setattr__(self, "loss_min", float(loss_min))

    @classmethod
    def from_values(
        cls, xs: np.ndarray, ys: np.ndarray, loss: np.ndarray, **provenance: Any
    ) -> LossGrid:
        """The grid of ``loss`` values, with its minimum found; ``provenance`` sets the
        remaining attributes (``margin``, ``n_examples``, ``precision``, ``plane_fingerprint``)."""
        xs, ys = array_field(xs, "xs", (None,)), array_field(ys, "ys", (None,))
        loss = array_field(loss, "loss", (ys.shape[0], xs.shape[0]))
        finite = np.where(np.isfinite(loss), loss, np.nan)
        if np.isnan(finite).all():
            return cls(xs, ys, loss, float("nan"), np.array([np.nan, np.nan]), **provenance)
        i, j = np.unravel_index(np.nanargmin(finite), loss.shape)
        return cls(xs, ys, loss, float(loss[i, j]), np.array([xs[j], ys[i]]), **provenance)

    @property
    def resolution(self) -> int:
        return int(self.xs.shape[0])

    def check_plane(self, plane: Plane) -> None:
        """Raise :class:`IncompatibleFileError` unless this grid was computed on ``plane`` (when
        the grid records its plane)."""
        if self.plane_fingerprint is not None and self.plane_fingerprint != plane.fingerprint():
            raise IncompatibleFileError(
                f"This loss grid was computed on another plane (fingerprint "
                f"{self.plane_fingerprint}, this plane's is {plane.fingerprint()})"
            )

    @classmethod
    def _from_saved(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> LossGrid:
        provenance = {name: meta.get(name) for name in _PROVENANCE}
        return cls.from_values(arrays["xs"], arrays["ys"], arrays["loss"], **provenance)

    def save_h5(self, path: str | os.PathLike, *, key: str = "train_loss") -> Path:
        """Write the grid as an HDF5 surface file in the layout of Li et al.'s reference code
        (``xcoordinates``, ``ycoordinates``, the losses as ``key``; see
        :mod:`loss_landscape_anim.results.hdf5`), with the provenance as file attributes, so
        their plotting scripts open it. Needs h5py (the ``[export]`` extra)."""
        from .hdf5 import save_h5

        provenance = {n: getattr(self, n) for n in _PROVENANCE}
        return save_h5(self.xs, self.ys, self.loss, path, key=key, provenance=provenance)

    @classmethod
    def load_h5(cls, path: str | os.PathLike, key: str = "train_loss") -> LossGrid:
        """Read surface ``key`` (``"train_loss"``, ``"test_loss"``, ``"train_acc"``, ...) of an
        HDF5 surface file in Li et al.'s layout, written by their ``plot_surface.py`` or by
        :meth:`save_h5`; the provenance attributes :meth:`save_h5` writes are read back. Needs
        h5py (the ``[export]`` extra)."""
        from .hdf5 import load_h5

        arrays, attrs = load_h5(path, key=key)
        provenance = {name: attrs.get(name) for name in _PROVENANCE}
        with reading(path):
            return cls.from_values(arrays["xs"], arrays["ys"], arrays["loss"], **provenance)


_PROVENANCE = ("margin", "n_examples", "precision", "plane_fingerprint")
