"""``Curve``: a parametric curve in weight space between two solutions, with the bends that shape it
(Garipov et al. 2018, "Loss surfaces, mode connectivity, and fast ensembling of DNNs")."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .._io import load_npz, reading, save_npz
from ._checks import array_field, check_finite, optional_number
from .plane import Plane

__all__ = ["CURVE_KINDS", "Curve", "curve_coefficients"]

#: The curve families: a Bezier curve whose control points are the ends and the bends, or a
#: polygonal chain through them.
CURVE_KINDS = ("bezier", "polychain")


def curve_coefficients(kind: str, n_bends: int, ts: np.ndarray) -> np.ndarray:
    """Weights (K, n_bends + 2) of the control points ``[start, *bends, end]`` at each ``t`` of
    ``ts`` (K,) in [0, 1]: a point of the curve is ``coefficients @ control_points``.

    ``"bezier"``: the Bernstein polynomials of degree ``n = n_bends + 1``,
    ``C(n, k) t^k (1 - t)^(n - k)``. ``"polychain"``: piecewise linear through the control points
    at ``t = k / (n_bends + 1)``. Both are exactly ``(1, 0, ..., 0)`` at ``t = 0`` and
    ``(0, ..., 0, 1)`` at ``t = 1``, so the curve starts and ends at the ends, bit for bit; with
    the bends evenly spaced on the straight line, both curves are that line, ``t`` its share.
    """
    ts = np.asarray(ts, dtype=np.float64).reshape(-1)
    if not np.all((ts >= 0.0) & (ts <= 1.0)):
        raise ValueError(f"Expected every t in [0, 1] but got {ts[(ts < 0) | (ts > 1)][:5]}")
    n = n_bends + 1
    if kind == "bezier":
        k = np.arange(n + 1)
        binomial = np.array([math.comb(n, int(j)) for j in k], dtype=np.float64)
        return binomial * ts[:, None] ** k * (1.0 - ts[:, None]) ** (n - k)
    knots = np.linspace(0.0, 1.0, n + 1)
    return np.stack([np.interp(ts, knots, np.eye(n + 1)[j]) for j in range(n + 1)], axis=1)


@dataclass(frozen=True, eq=False)
class Curve:
    """A curve ``phi(t)``, t in [0, 1], from ``start`` to ``end`` shaped by ``bends``.

    :func:`~loss_landscape_anim.connect` trains the bends so that the loss is low all along the
    curve (the ends stay fixed); :meth:`point` gives the weights at ``t``.

    Attributes:
        start: (P,) the weights at ``t = 0``.
        end: (P,) the weights at ``t = 1``.
        bends: (B, P) the trained bends (control points between the ends), B >= 1.
        kind: ``"bezier"`` or ``"polychain"`` (see :func:`curve_coefficients`).
        train_loss: (S,) the training objective at each step: the mean loss at the points of
            the curve sampled at that step (NaN where it was not finite).
        history: (H, B, P) the bends at recorded steps, from the initial ones (row 0, on the
            straight line) to the final ones (the last row equals ``bends``).
        history_steps: (H,) the training step of each row of ``history`` (0 for the initial
            bends).
        labels: names of the two ends, e.g. two optimizers.
        learning_rate: the step size the bends were trained with (None: unknown).
        n_examples: how many training examples the bends were trained on (None: unknown).
    """

    start: np.ndarray
    end: np.ndarray
    bends: np.ndarray
    kind: str = "bezier"
    train_loss: np.ndarray | None = None
    history: np.ndarray | None = None
    history_steps: np.ndarray | None = None
    labels: tuple[str, str] = ("start", "end")
    learning_rate: float | None = None
    n_examples: int | None = None

    def __post_init__(self) -> None:
        start = array_field(self.start, "start", (None,))
        P = start.shape[0]
        end = array_field(self.end, "end", (P,))
        bends = array_field(self.bends, "bends", (None, P))
        if bends.shape[0] < 1:
            raise ValueError("Expected bends to hold at least one bend but it is empty")
        for name, value in (("start", start), ("end", end), ("bends", bends)):
            check_finite(value, name)
            object.__setattr__(self, name, value)
        if self.kind not in CURVE_KINDS:
            raise ValueError(f"Expected kind to be one of {CURVE_KINDS} but got {self.kind!r}")
        loss = self.train_loss if self.train_loss is not None else np.empty(0)
        loss = array_field(loss, "train_loss", (None,))
        check_finite(loss, "train_loss", allow_nan=True)
        object.__setattr__(self, "train_loss", loss)
        self._check_history()
        labels = tuple(self.labels)
        if len(labels) != 2 or not all(isinstance(s, str) for s in labels):
            raise TypeError(f"Expected labels to be two strings but got {self.labels!r}")
        object.__setattr__(self, "labels", labels)
        rate = optional_number(self.learning_rate, "learning_rate", low=0)
        object.__setattr__(self, "learning_rate", rate)
        count = optional_number(self.n_examples, "n_examples", low=1, integer=True)
        object.__setattr__(self, "n_examples", count)

    def _check_history(self) -> None:
        """Without a history, the final bends are its one row (at the last step)."""
        B, P = self.bends.shape
        history = self.history if self.history is not None else self.bends[None]
        history = array_field(history, "history", (None, B, P))
        if history.shape[0] < 1:
            raise ValueError("Expected history to hold at least one row but it is empty")
        check_finite(history, "history")
        if not np.array_equal(history[-1], self.bends):
            raise ValueError("Expected the last row of history to be the final bends")
        n_steps = 0 if self.train_loss is None else len(self.train_loss)
        default_steps = np.array([n_steps]) if self.history is None else None
        steps = self.history_steps if self.history_steps is not None else default_steps
        if steps is None:
            raise ValueError("Expected history_steps with history (the step of each row)")
        steps = array_field(steps, "history_steps", (history.shape[0],), kind="int")
        if steps.size > 1 and not bool(np.all(np.diff(steps) > 0)):
            raise ValueError(f"Expected history_steps to be strictly increasing but got {steps}")
        object.__setattr__(self, "history", history)
        object.__setattr__(self, "history_steps", steps)

    @property
    def n_params(self) -> int:
        return int(self.start.shape[0])

    @property
    def n_bends(self) -> int:
        return int(self.bends.shape[0])

    @property
    def n_rows(self) -> int:
        """Rows of :attr:`history`: the recorded states of the curve during training."""
        assert self.history is not None
        return int(self.history.shape[0])

    def control_points(self, row: int = -1) -> np.ndarray:
        """(B + 2, P) ``[start, *bends, end]``, with the bends of history row ``row``."""
        assert self.history is not None
        return np.concatenate([self.start[None], self.history[row], self.end[None]])

    def points(self, ts: np.ndarray, row: int = -1) -> np.ndarray:
        """(K, P) float64: the weights at each ``t`` of ``ts`` (K,) in [0, 1], with the bends of
        history row ``row`` (default: the final bends)."""
        coefficients = curve_coefficients(self.kind, self.n_bends, ts)
        return coefficients @ self.control_points(row)

    def point(self, t: float) -> np.ndarray:
        """(P,) float64: the weights at ``t`` in [0, 1]; ``point(0)`` is ``start`` and
        ``point(1)`` is ``end``, exactly."""
        return self.points(np.array([t]))[0]

    def at_row(self, row: int) -> Curve:
        """This curve as it was at history row ``row`` (its bends then; the history up to it)."""
        assert self.history is not None and self.history_steps is not None
        k = range(self.n_rows)[row]  # IndexError for a row out of range
        return replace(
            self,
            bends=self.history[k],
            history=self.history[: k + 1],
            history_steps=self.history_steps[: k + 1],
        )

    def plane(self, n_points: int = 61) -> Plane:
        """The plane through ``start``, ``end`` and the bend (Garipov et al.'s figure): origin
        ``start``, first direction along ``end - start``, second the mean of the bends made
        orthogonal to it (Gram-Schmidt, applied twice). Both directions have unit norm, so
        plane coordinates are distances in weight space: ``start`` is at (0, 0), ``end`` at
        (|end - start|, 0), and with one bend the three points lie in the plane exactly (up to
        rounding). The plane's path is the final curve at ``n_points`` values of ``t``, with
        its distance from the plane (0 for one bend of a Bezier curve or polygonal chain: they
        stay in the span of their control points).

        Raises ``ValueError`` when the ends coincide or the bends lie on the straight line
        between them (then no plane is defined)."""
        u = self.end - self.start
        length = float(np.linalg.norm(u))
        if not length > 0:
            raise ValueError("Expected start and end to differ but they are the same weights")
        u = u / length
        w = self.bends.mean(axis=0) - self.start
        v = w.copy()
        for _ in range(2):  # twice is enough (Giraud et al. 2005)
            v = v - (u @ v) * u
        norm = float(np.linalg.norm(v))
        # The rounding of the projection is about sqrt(P) * eps * |w|: below that, w is on the line.
        if not norm > 8 * math.sqrt(self.n_params) * np.finfo(np.float64).eps * max(
            float(np.linalg.norm(w)), length
        ):
            raise ValueError(
                "Expected the bends to leave the straight line between the ends, but they lie "
                "on it: no plane through the ends and the bends is defined"
            )
        directions = np.stack([u, v / norm])
        coords, distance = self.project(self.start, directions, np.linspace(0.0, 1.0, n_points))
        return Plane(self.start.copy(), directions, coords, distance, None, "curve")

    def project(
        self, origin: np.ndarray, directions: np.ndarray, ts: np.ndarray, row: int = -1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Least-squares coordinates (K, 2) of the curve's points at ``ts`` (with the bends of
        history row ``row``) on the plane ``origin + span(directions)`` (``directions`` (2, P)),
        and their distances (K,) from it.

        A point of the curve is a combination ``c(t) @ control`` of the control points, so both
        follow from the control points' coordinates and residuals (what is left of each after
        its projection), at a cost of B + 2 weight vectors whatever the number of points: the
        distance is ``|c(t) @ residuals|``, from the residuals' Gram matrix (computed from the
        residuals themselves, not as a difference of squares, which would lose small distances
        to rounding)."""
        control, residual = self._control_projection(origin, directions, row)
        c = curve_coefficients(self.kind, self.n_bends, ts)
        squared = np.einsum("ki,ij,kj->k", c, residual @ residual.T, c)
        return c @ control, np.sqrt(np.clip(squared, 0.0, None))

    def history_paths(self, plane: Plane, n_points: int = 61) -> list[np.ndarray]:
        """Per history row, the plane coordinates (n_points + B + 2, 2) of the curve's points at
        ``n_points`` values of ``t`` followed by its control points (the ends and the bends),
        projected onto ``plane``: the ``extra_paths`` of ``compute_loss_grid`` for a grid that
        shows the curve, its bends and its control polygon at every step of its training."""
        c = curve_coefficients(self.kind, self.n_bends, np.linspace(0.0, 1.0, n_points))
        paths = []
        for row in range(self.n_rows):
            control, _ = self._control_projection(plane.origin, plane.directions, row)
            paths.append(np.concatenate([c @ control, control]))
        return paths

    def _control_projection(
        self, origin: np.ndarray, directions: np.ndarray, row: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Least-squares plane coordinates (B + 2, 2) of the control points of history row
        ``row`` and their residuals (B + 2, P) off the plane."""
        offsets = self.control_points(row) - origin
        gram = directions @ directions.T
        control = np.linalg.solve(gram, directions @ offsets.T).T
        return control, offsets - control @ directions

    def save(self, path: str | os.PathLike) -> Path:
        arrays = {
            "start": self.start,
            "end": self.end,
            "bends": self.bends,
            "train_loss": self.train_loss,
            "history": self.history,
            "history_steps": self.history_steps,
        }
        meta = {
            "kind": self.kind,
            "labels": list(self.labels),
            "learning_rate": self.learning_rate,
            "n_examples": self.n_examples,
        }
        return save_npz(path, "Curve", arrays, {"curve": meta})

    @classmethod
    def load(cls, path: str | os.PathLike) -> Curve:
        """Read a curve written by :meth:`save`; refuses anything that is not one."""
        names = ("start", "end", "bends", "train_loss", "history", "history_steps")
        arrays, meta = load_npz(path, "Curve", arrays=names, meta=("curve",))
        with reading(path):
            info = meta["curve"]
            labels = info["labels"]
            return cls(
                arrays["start"],
                arrays["end"],
                arrays["bends"],
                kind=info["kind"],
                train_loss=arrays["train_loss"],
                history=arrays["history"],
                history_steps=arrays["history_steps"],
                labels=(labels[0], labels[1]),
                learning_rate=info["learning_rate"],
                n_examples=info["n_examples"],
            )
