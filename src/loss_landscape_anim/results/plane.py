"""``Plane``: a 2D plane in weight space through an origin, and a path's coordinates on it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import IncompatibleFileError
from ..params.blocks import project_rows
from ..params.layout import ParamLayout
from ._base import Result
from ._checks import array_field, check_finite, check_independent
from .trajectory import Trajectory

__all__ = ["Plane"]


@dataclass(frozen=True, eq=False)
class Plane(Result):
    """A 2D plane in weight space and a path projected onto it.

    Attributes:
        origin: (P,) the final weights; plane coordinates (0, 0).
        directions: (2, P) the two directions spanning the plane.
        path_2d: (T, 2) least-squares coordinates of each recorded point (dot products when the
            directions are orthonormal); ``path_2d[-1]`` is (0, 0) for the path the plane was fit on.
        off_plane_distance: (T,) Euclidean distance of each recorded point from the plane.
        explained_variance: (2,) share of the path's variance along each direction (PCA only);
            0 for a seeded random direction that completes a plane the path does not span.
        method: how the directions were made.
        subspace: which weights the plane spans when they are not all of the model's ("" when
            they are): the trainable ones of a model with frozen parameters (a LoRA adapter),
            in words, as :attr:`Trajectory.subspace` says; the axis labels end with it.
        layout: the names and shapes of the parameters the plane spans (from the trajectory it
            was fit to), checked against the model of every evaluation on it; None for a plane
            made otherwise, or saved before planes kept it (only the count is checked then).
    """

    origin: np.ndarray
    directions: np.ndarray
    path_2d: np.ndarray
    off_plane_distance: np.ndarray
    explained_variance: np.ndarray | None = None
    method: str = "custom"
    subspace: str = ""
    layout: ParamLayout | None = None

    ARRAYS = ("origin", "directions", "path_2d", "off_plane_distance", "explained_variance")
    REQUIRED = ("origin", "directions", "path_2d", "off_plane_distance")

    def __post_init__(self) -> None:
        origin = array_field(self.origin, "origin", (None,))
        P = origin.shape[0]
        directions = array_field(self.directions, "directions", (2, P))
        path_2d = array_field(self.path_2d, "path_2d", (None, 2))
        T = path_2d.shape[0]
        if T < 1:
            raise ValueError("Expected path_2d to hold at least one point but it is empty")
        distance = array_field(self.off_plane_distance, "off_plane_distance", (T,))
        for name, array in (
            ("origin", origin),
            ("directions", directions),
            ("path_2d", path_2d),
            ("off_plane_distance", distance),
        ):
            check_finite(array, name)
            object.__setattr__(self, name, array)
        check_independent(directions)
        if np.any(distance < 0):
            raise ValueError(f"Expected off_plane_distance >= 0 but got {distance}")
        if self.explained_variance is not None:
            explained = array_field(self.explained_variance, "explained_variance", (2,))
            if not np.all((explained >= 0) & (explained <= 1 + 1e-9)):  # 1e-9: rounding
                raise ValueError(f"Expected explained_variance in [0, 1] but got {explained}")
            object.__setattr__(self, "explained_variance", explained)
        if not isinstance(self.method, str):
            raise TypeError(f"Expected method to be a string but got {self.method!r}")
        if not isinstance(self.subspace, str):
            raise TypeError(f"Expected subspace to be a string but got {self.subspace!r}")
        if self.layout is not None:
            if not isinstance(self.layout, ParamLayout):
                raise TypeError(
                    f"Expected layout to be a ParamLayout or None but got "
                    f"{type(self.layout).__name__}"
                )
            if self.layout.n_params != P:
                raise ValueError(
                    f"Expected a layout of {P} parameters (the origin's) but got "
                    f"{self.layout.n_params}"
                )

    def point(self, x: float, y: float) -> np.ndarray:
        """The weight vector at plane coordinates ``(x, y)``."""
        return self.origin + x * self.directions[0] + y * self.directions[1]

    def fingerprint(self) -> str:
        """A short hash of the origin and directions: equal for the same plane, bit for bit."""
        digest = hashlib.sha256()
        for array in (self.origin, self.directions):
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        return digest.hexdigest()[:16]

    def axis_labels(self) -> tuple[str, str]:
        """Axis labels: "principal component k, 61.2%" for PCA (a PCA direction with no
        explained variance at all is a seeded random one that completes the plane: labelled as
        such), the eigenvector's rank for Hessian directions, else "direction k"; followed, for a
        plane of a subspace, by the weights it spans (:attr:`subspace`)."""
        labels: tuple[str, str]
        if self.explained_variance is not None:
            labels = tuple(  # type: ignore[assignment]
                f"principal component {k}, {100 * v:.1f}%"
                if v > 0
                else f"random direction {k} (the path has no variance left)"
                for k, v in enumerate(self.explained_variance)
            )
        elif self.method == "hessian":
            labels = ("Hessian eigenvector 1 (largest)", "Hessian eigenvector 2")
        else:
            labels = ("direction 0", "direction 1")
        if not self.subspace:
            return labels
        return (f"{labels[0]}\n({self.subspace})", f"{labels[1]}\n({self.subspace})")

    def with_path(self, trajectory: Trajectory) -> Plane:
        """The same plane with ``trajectory`` projected onto it instead."""
        self._check_weights(trajectory)
        coords, distance = project_rows(trajectory.params, self.origin, self.directions)
        return replace(self, path_2d=coords, off_plane_distance=distance)

    def check_path(self, trajectory: Trajectory) -> None:
        """Raise :class:`IncompatibleFileError` unless ``path_2d`` is ``trajectory`` projected
        onto this plane: the same parameter count, one point per row, and its first and last
        rows projecting onto the path's first and last points."""
        self._check_weights(trajectory)
        T = self.path_2d.shape[0]
        if len(trajectory) != T:
            raise IncompatibleFileError(
                f"Expected the plane's path to have {len(trajectory)} points (one per row of the "
                f"trajectory) but it has {T}"
            )
        ends = [0, T - 1]
        coords, _ = project_rows(np.asarray(trajectory.params[ends]), self.origin, self.directions)
        # The same projection, summed in other blocks: equal up to float64 rounding (about
        # P * 1e-16 of the path's scale, below 1e-7 for any P a run holds), while another run's
        # or model's rows differ at the scale of the path itself.
        scale = max(float(np.max(np.abs(self.path_2d))), float(np.max(self.off_plane_distance)))
        tolerance = 1e-6 * max(scale, float(np.finfo(np.float64).tiny))
        if not np.allclose(coords, self.path_2d[ends], rtol=0.0, atol=tolerance):
            raise IncompatibleFileError(
                "The plane's path is not this trajectory's: its first and last rows project "
                f"onto {np.round(coords, 6).tolist()} but the path runs from "
                f"{np.round(self.path_2d[0], 6).tolist()} to "
                f"{np.round(self.path_2d[-1], 6).tolist()} (another run, or another model); "
                "project it with plane.with_path(trajectory)"
            )

    def _check_weights(self, trajectory: Trajectory) -> None:
        if not isinstance(trajectory, Trajectory):
            raise TypeError(
                f"Expected trajectory to be a Trajectory but got {type(trajectory).__name__}"
            )
        if self.layout is not None and trajectory.n_params == self.origin.shape[0]:
            trajectory.layout.check_spans(self.layout, "the trajectory")
        if trajectory.n_params != self.origin.shape[0]:
            raise IncompatibleFileError(
                f"Expected a trajectory of a model with {self.origin.shape[0]} parameters (the "
                f"plane's) but its rows hold {trajectory.n_params}: it is another model's"
            )

    def _saved(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = super()._saved()
        meta["layout"] = None if self.layout is None else self.layout.to_json()
        return arrays, meta

    @classmethod
    def _from_saved(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Plane:
        layout = meta.get("layout")
        meta = {**meta, "layout": None if layout is None else ParamLayout.from_json(layout)}
        return super()._from_saved(arrays, meta)
