"""``Curve``: the Bezier and polygonal-chain coefficients against their formulas, the ends exact, the
untrained curve equal to the straight line, the plane through the ends and the bend (the three
points in it up to rounding, from an error estimate), save/load, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loss_landscape_anim import Curve
from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.results.curve import curve_coefficients
from tolerance import EPS64, sum_tolerance

RNG = np.random.default_rng(0)
P = 40


def make_curve(n_bends: int = 1, kind: str = "bezier", rows: int = 3) -> Curve:
    start, end = RNG.normal(size=P), RNG.normal(size=P)
    history = RNG.normal(size=(rows, n_bends, P))
    return Curve(
        start,
        end,
        history[-1],
        kind,
        np.linspace(1.0, 0.5, 7),
        history,
        np.array([0, 3, 7][:rows]),
        ("a", "b"),
        0.01,
        100,
    )


@pytest.mark.parametrize("kind", ["bezier", "polychain"])
@pytest.mark.parametrize("n_bends", [1, 3])
def test_coefficients_sum_to_one_and_are_exact_at_the_ends(kind, n_bends):
    ts = np.linspace(0, 1, 17)
    c = curve_coefficients(kind, n_bends, ts)
    assert c.shape == (17, n_bends + 2)
    np.testing.assert_allclose(c.sum(axis=1), 1.0, rtol=0, atol=sum_tolerance(1.0, n_bends + 2))
    assert (c >= 0).all()
    np.testing.assert_array_equal(c[0], np.eye(n_bends + 2)[0])
    np.testing.assert_array_equal(c[-1], np.eye(n_bends + 2)[-1])


def test_bezier_coefficients_are_the_bernstein_polynomials():
    t = 0.3
    c = curve_coefficients("bezier", 2, np.array([t]))[0]  # degree 3
    expected = [math.comb(3, k) * t**k * (1 - t) ** (3 - k) for k in range(4)]
    np.testing.assert_allclose(c, expected, rtol=4 * EPS64)


def test_polychain_passes_through_its_bends_at_their_knots():
    curve = make_curve(n_bends=3, kind="polychain")
    for k in range(3):
        np.testing.assert_allclose(
            curve.point((k + 1) / 4), curve.bends[k], rtol=0, atol=sum_tolerance(10.0, 5)
        )


@pytest.mark.parametrize("kind", ["bezier", "polychain"])
def test_the_ends_are_exact_and_bends_evenly_on_the_line_give_the_line(kind):
    curve = make_curve(kind=kind)
    np.testing.assert_array_equal(curve.point(0.0), curve.start)
    np.testing.assert_array_equal(curve.point(1.0), curve.end)
    n = 3
    shares = np.arange(1, n + 1)[:, None] / (n + 1)
    straight = Curve(curve.start, curve.end, curve.start + shares * (curve.end - curve.start), kind)
    ts = np.linspace(0, 1, 9)
    expected = curve.start + ts[:, None] * (curve.end - curve.start)
    scale = float(np.abs(curve.start).max() + np.abs(curve.end).max())
    np.testing.assert_allclose(straight.points(ts), expected, rtol=0, atol=sum_tolerance(scale, 5))


def test_history_rows_and_at_row():
    curve = make_curve(rows=3)
    assert curve.n_rows == 3 and curve.n_bends == 1 and curve.n_params == P
    earlier = curve.at_row(1)
    np.testing.assert_array_equal(earlier.bends, curve.history[1])
    assert earlier.n_rows == 2 and earlier.history_steps.tolist() == [0, 3]
    np.testing.assert_array_equal(curve.points(np.array([0.5]), row=1), earlier.points([0.5]))
    with pytest.raises(IndexError):
        curve.at_row(3)
    hand_made = Curve(curve.start, curve.end, curve.bends)  # no history: the bends are its row
    assert hand_made.n_rows == 1 and hand_made.history_steps.tolist() == [0]


@pytest.mark.parametrize("kind", ["bezier", "polychain"])
def test_the_plane_holds_the_ends_and_the_bend_exactly(kind):
    curve = make_curve(kind=kind)
    plane = curve.plane(n_points=21)
    D = plane.directions
    np.testing.assert_allclose(D @ D.T, np.eye(2), rtol=0, atol=sum_tolerance(1.0, P))
    np.testing.assert_array_equal(plane.origin, curve.start)
    three = np.stack([curve.start, curve.end, curve.bends[0]])
    offsets = three - plane.origin
    residual = offsets - (offsets @ D.T) @ D
    # each entry of the residual is a sum of P products of entries of size |offset|, rounded
    scale = float(np.linalg.norm(offsets, axis=1).max())
    bound = sum_tolerance(scale, P) * math.sqrt(P)
    assert np.linalg.norm(residual, axis=1).max() <= bound
    coords = offsets @ D.T
    length = np.linalg.norm(curve.end - curve.start)
    np.testing.assert_allclose(coords[1], [length, 0.0], rtol=0, atol=sum_tolerance(scale, P))
    assert coords[2, 1] > 0  # the bend lies on the positive side of the second direction
    # the curve itself stays in the plane of its control points (one bend)
    assert plane.off_plane_distance.max() <= bound
    assert plane.path_2d.shape == (21, 2)


def test_the_plane_needs_a_bend_off_the_line():
    curve = make_curve()
    on_line = Curve(curve.start, curve.end, (curve.start + 0.5 * (curve.end - curve.start))[None])
    with pytest.raises(ValueError, match="lie on it: no plane"):
        on_line.plane()


def test_projections_of_earlier_rows_match_the_residuals_computed_point_by_point():
    curve = make_curve(rows=3)
    plane = curve.plane()
    ts = np.linspace(0, 1, 9)
    coords, distance = curve.project(plane.origin, plane.directions, ts, row=0)
    offsets = curve.points(ts, row=0) - plane.origin
    expected = offsets @ plane.directions.T  # orthonormal directions: dot products
    residual = np.linalg.norm(offsets - expected @ plane.directions, axis=1)
    scale = float(np.linalg.norm(offsets, axis=1).max())
    np.testing.assert_allclose(coords, expected, rtol=0, atol=sum_tolerance(scale, P))
    assert residual[1:-1].min() > 0.1 * scale  # the earlier bend is far off the final plane
    # squared distances: sums of P products of entries of the offsets (9: a few more roundings
    # of the control points' combination)
    np.testing.assert_allclose(
        distance**2, residual**2, rtol=0, atol=sum_tolerance(scale**2, 9 * P)
    )


def test_history_paths_cover_the_curve_and_its_control_points():
    curve = make_curve(rows=3)
    plane = curve.plane()
    paths = curve.history_paths(plane, n_points=11)
    assert len(paths) == 3 and all(p.shape == (11 + 3, 2) for p in paths)
    np.testing.assert_allclose(
        paths[-1][:11], curve.project(plane.origin, plane.directions, np.linspace(0, 1, 11))[0]
    )


def test_save_and_load_round_trip(tmp_path):
    curve = make_curve(n_bends=2, kind="polychain")
    loaded = Curve.load(curve.save(tmp_path / "curve.npz"))
    for name in ("start", "end", "bends", "train_loss", "history", "history_steps"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(curve, name))
    assert loaded.kind == "polychain" and loaded.labels == ("a", "b")
    assert loaded.learning_rate == 0.01 and loaded.n_examples == 100


def test_bad_curves_are_refused(tmp_path):
    curve = make_curve()
    with pytest.raises(ValueError, match=r"Expected kind to be one of \('bezier', 'polychain'\)"):
        Curve(curve.start, curve.end, curve.bends, "spline")
    with pytest.raises(ValueError, match=r"Expected end of shape \(40,\) but got \(3,\)"):
        Curve(curve.start, np.zeros(3), curve.bends)
    with pytest.raises(ValueError, match="Expected bends to hold at least one bend"):
        Curve(curve.start, curve.end, np.zeros((0, P)))
    with pytest.raises(ValueError, match="Expected bends to be finite"):
        Curve(curve.start, curve.end, np.full((1, P), np.nan))
    with pytest.raises(ValueError, match="last row of history to be the final bends"):
        Curve(
            curve.start,
            curve.end,
            curve.bends,
            history=np.zeros((2, 1, P)),
            history_steps=np.array([0, 1]),
        )
    with pytest.raises(ValueError, match="history_steps to be strictly increasing"):
        Curve(
            curve.start,
            curve.end,
            curve.bends,
            history=curve.history,
            history_steps=np.array([0, 3, 3]),
        )
    with pytest.raises(ValueError, match=r"Expected every t in \[0, 1\]"):
        curve.point(1.5)
    path = tmp_path / "not-a-curve.npz"
    np.savez(path, start=np.zeros(3))
    with pytest.raises(IncompatibleFileError):
        Curve.load(path)
