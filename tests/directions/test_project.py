"""Tests of ``project`` / ``fit_plane`` and ``Plane``: PCA against numpy's SVD, least-squares
coordinates against ``np.linalg.lstsq``, distances against a direct computation, random and
filter-normalised directions, validation of custom directions."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from loss_landscape_anim.directions import fit_plane, project
from loss_landscape_anim.directions.pca import pca_directions
from loss_landscape_anim.directions.random import random_directions
from loss_landscape_anim.params.layout import ParamLayout
from loss_landscape_anim.results import Plane, Trajectory
from tolerance import distance_tolerance, sum_tolerance

# A conv weight (3 filters), a bias, a linear weight (2 rows), a bias: 27 + 3 + 8 + 2 = 40.
LAYOUT = ParamLayout(("c.w", "c.b", "l.w", "l.b"), ((3, 1, 3, 3), (3,), (2, 4), (2,)))
P = LAYOUT.n_params


def random_walk(T: int = 9, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = rng.normal(size=(T, P)) * np.linspace(1.0, 0.2, T)[:, None]
    return np.cumsum(steps, axis=0).astype(np.float32)


def trajectory_of(params: np.ndarray) -> Trajectory:
    T = params.shape[0]
    return Trajectory(params, np.zeros(T), np.zeros(T), np.arange(T), LAYOUT)


def svd_reference(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centred = rows.astype(np.float64) - rows.astype(np.float64).mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[:2], (s**2 / np.sum(s**2))[:2]


def assert_equal_up_to_sign(D: np.ndarray, reference: np.ndarray) -> None:
    for k in range(2):
        sign = np.sign(D[k] @ reference[k])
        np.testing.assert_allclose(D[k], sign * reference[k], atol=1e-9)


def test_pca_matches_numpy_svd() -> None:
    params = random_walk()
    plane = project(trajectory_of(params), "pca")
    vt, ratios = svd_reference(params)
    assert plane.method == "pca"
    assert plane.directions.shape == (2, P)
    assert_equal_up_to_sign(plane.directions, vt)
    np.testing.assert_allclose(plane.directions @ plane.directions.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(plane.explained_variance, ratios, rtol=1e-9)
    assert plane.explained_variance[0] >= plane.explained_variance[1]


def test_pca_path_starts_at_negative_coordinates() -> None:
    for seed in range(4):
        plane = project(trajectory_of(random_walk(seed=seed)), "pca")
        assert (plane.path_2d[0] < 0).all()


@pytest.mark.parametrize("method", ["pca", "random", "filter"])
def test_plane_passes_through_the_final_weights(method: str) -> None:
    params = random_walk()
    plane = project(trajectory_of(params), method, seed=3)
    np.testing.assert_array_equal(plane.origin, params[-1].astype(np.float64))
    # The final row's offset from the origin is exactly 0, so every sum over it is too.
    np.testing.assert_array_equal(plane.path_2d[-1], 0.0)
    rebuilt = plane.origin + plane.path_2d[-1] @ plane.directions
    np.testing.assert_array_equal(rebuilt, params[-1])
    assert plane.off_plane_distance[-1] == 0.0


def test_a_path_inside_a_plane_is_reproduced_exactly() -> None:
    rng = np.random.default_rng(5)
    u, v = rng.normal(size=(2, P))
    coords = rng.normal(size=(7, 2))
    base = rng.normal(size=P)
    params = base + coords[:, :1] * u + coords[:, 1:] * v
    plane = fit_plane([params], params[-1], LAYOUT, "pca")
    rebuilt = plane.origin + plane.path_2d @ plane.directions
    np.testing.assert_allclose(rebuilt, params, atol=1e-9)
    sq_norm = float((((params - params[-1]) ** 2).sum(axis=1)).max())
    np.testing.assert_allclose(plane.off_plane_distance, 0.0, atol=distance_tolerance(sq_norm, P))
    np.testing.assert_allclose(plane.explained_variance.sum(), 1.0, rtol=1e-12)


def test_custom_coordinates_are_least_squares() -> None:
    params = random_walk()
    rng = np.random.default_rng(1)
    u = rng.normal(size=P)
    v = 0.6 * u + rng.normal(size=P)  # far from orthogonal
    plane = project(trajectory_of(params), "custom", directions=(u, torch.from_numpy(v)))
    np.testing.assert_array_equal(plane.directions, np.stack([u, v]))
    offsets = params.astype(np.float64) - params[-1].astype(np.float64)
    expected, *_ = np.linalg.lstsq(np.stack([u, v]).T, offsets.T, rcond=None)
    np.testing.assert_allclose(plane.path_2d, expected.T, rtol=1e-9, atol=1e-9)
    assert plane.explained_variance is None


@pytest.mark.parametrize("method", ["pca", "custom"])
def test_off_plane_distance_matches_a_direct_computation(method: str) -> None:
    params = random_walk()
    rng = np.random.default_rng(2)
    directions = (rng.normal(size=P), rng.normal(size=P)) if method == "custom" else None
    plane = project(trajectory_of(params), method, directions=directions)
    residual = params - plane.origin - plane.path_2d @ plane.directions
    expected = np.linalg.norm(residual, axis=1)
    assert expected[:-1].min() > 0.1  # the walk really leaves the plane
    np.testing.assert_allclose(plane.off_plane_distance, expected, rtol=1e-6, atol=1e-6)


def test_random_directions_are_unit_and_seeded() -> None:
    state = torch.get_rng_state()
    a = random_directions(LAYOUT, 0)
    assert torch.equal(torch.get_rng_state(), state)  # own generator, global RNG untouched
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(random_directions(LAYOUT, 0), a)
    assert not np.array_equal(random_directions(LAYOUT, 1), a)
    assert not np.array_equal(random_directions(LAYOUT, None), random_directions(LAYOUT, None))
    plane = project(trajectory_of(random_walk()), "random", seed=0)
    np.testing.assert_array_equal(plane.directions, a)


def test_filter_normalised_directions() -> None:
    params = random_walk()
    plane = project(trajectory_of(params), "filter", seed=4)
    final = params[-1].astype(np.float64)
    for shape, (a, b) in zip(LAYOUT.shapes, LAYOUT.offsets(), strict=True):
        for k in range(2):
            d = plane.directions[k, a:b]
            if len(shape) < 2:
                np.testing.assert_array_equal(d, 0.0)
                continue
            d_norms = np.linalg.norm(d.reshape(shape[0], -1), axis=1)
            w_norms = np.linalg.norm(final[a:b].reshape(shape[0], -1), axis=1)
            np.testing.assert_allclose(d_norms, w_norms, rtol=1e-12)
    other = project(trajectory_of(params), "filter", seed=5)
    assert not np.allclose(other.directions, plane.directions)


def test_filter_normalisation_needs_a_matrix_parameter() -> None:
    layout = ParamLayout(("b",), ((5,),))
    with pytest.raises(ValueError, match="no parameter with 2 or more dimensions"):
        fit_plane([np.ones((3, 5))], np.ones(5), layout, "filter", seed=0)


def test_custom_direction_errors() -> None:
    t = trajectory_of(random_walk())
    u = np.ones(P)
    v = np.arange(P, dtype=float)
    with pytest.raises(
        ValueError,
        match=rf"custom_directions\[1\] to have {P} entries \(the model's parameter count\) but got {P - 1}",
    ):
        project(t, "custom", directions=(u, v[:-1]))
    with pytest.raises(
        ValueError, match=r"custom_directions\[0\] to be non-zero but it is all zeros"
    ):
        project(t, "custom", directions=(np.zeros(P), v))
    with pytest.raises(ValueError, match=r"custom_directions\[1\] to be finite but it has NaN"):
        project(t, "custom", directions=(u, np.r_[v[:-1], np.nan]))
    with pytest.raises(ValueError, match="linearly independent but they are parallel"):
        project(t, "custom", directions=(u, -3 * u))
    with pytest.raises(ValueError, match="to hold 2 vectors but got 3"):
        project(t, "custom", directions=(u, v, u + v))
    with pytest.raises(
        ValueError, match=rf"needs custom_directions=\(u, v\): two vectors of length {P}"
    ):
        project(t, "custom")
    with pytest.raises(TypeError, match="two numeric vectors"):
        project(t, "custom", directions=("abc", v))


def test_method_errors() -> None:
    t = trajectory_of(random_walk())
    with pytest.raises(
        ValueError,
        match="Expected reduction_method to be one of 'pca', 'random', 'filter', 'hessian', 'custom' but got 'tsne'",
    ):
        project(t, "tsne")
    with pytest.raises(
        ValueError, match="custom_directions were given but reduction_method is 'pca'"
    ):
        project(t, "pca", directions=(np.ones(P), np.arange(P)))


def test_pca_of_two_points_completes_the_plane_with_a_seeded_orthogonal_direction() -> None:
    params = random_walk(T=2)
    plane = project(trajectory_of(params), "pca", seed=3)
    step = params[0].astype(np.float64) - params[1]
    np.testing.assert_allclose(abs(plane.directions[0] @ step), np.linalg.norm(step), rtol=1e-9)
    np.testing.assert_allclose(plane.directions @ plane.directions.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(plane.explained_variance, [1.0, 0.0], atol=sum_tolerance(1.0, 2))
    # One step spans one direction exactly: no distance but for rounding (2.1e-8 was seen).
    tol = distance_tolerance(float(step @ step), P)
    np.testing.assert_allclose(plane.off_plane_distance, 0.0, atol=tol)
    again = project(trajectory_of(params), "pca", seed=3)
    np.testing.assert_array_equal(plane.directions, again.directions)


def test_pca_of_a_single_point_uses_two_random_orthonormal_directions() -> None:
    plane = project(trajectory_of(np.ones((5, P), np.float32)), "pca", seed=0)
    np.testing.assert_allclose(plane.directions @ plane.directions.T, np.eye(2), atol=1e-12)
    np.testing.assert_array_equal(plane.explained_variance, [0.0, 0.0])
    np.testing.assert_allclose(plane.path_2d, 0.0, atol=1e-9)


def test_joint_pca_over_two_paths() -> None:
    a, b = random_walk(T=9, seed=0), random_walk(T=5, seed=1)
    plane = fit_plane([a, b], a[-1], LAYOUT, "pca")
    vt, ratios = svd_reference(np.vstack([a, b]))
    assert_equal_up_to_sign(plane.directions, vt)
    np.testing.assert_allclose(plane.explained_variance, ratios, rtol=1e-9)
    assert plane.path_2d.shape == (9, 2)  # the projection of the first path
    second = plane.with_path(trajectory_of(b))
    expected = (b - a[-1].astype(np.float64)) @ plane.directions.T
    np.testing.assert_allclose(second.path_2d, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(second.directions, plane.directions)


@pytest.mark.parametrize("block_bytes", [8, 300, 10_000])
def test_streamed_pca_with_small_blocks(block_bytes: int) -> None:
    # Paths of different lengths must be cut at the same columns (fixed bug: they were not).
    paths = [random_walk(T=9, seed=0), random_walk(T=4, seed=1), random_walk(T=6, seed=2)]
    D, ratios = pca_directions(paths, block_bytes=block_bytes)
    D_whole, ratios_whole = pca_directions(paths)
    np.testing.assert_allclose(D, D_whole, atol=1e-10)
    np.testing.assert_allclose(ratios, ratios_whole, rtol=1e-10)
    assert_equal_up_to_sign(D, svd_reference(np.vstack(paths))[0])


@pytest.mark.parametrize("method", ["pca", "custom"])
def test_plane_save_load_round_trip(tmp_path: Path, method: str) -> None:
    directions = (np.ones(P), np.arange(P)) if method == "custom" else None
    plane = project(trajectory_of(random_walk()), method, directions=directions)
    loaded = Plane.load(plane.save(tmp_path / "plane.npz"))
    for name in ("origin", "directions", "path_2d", "off_plane_distance"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(plane, name))
    if method == "pca":
        np.testing.assert_array_equal(loaded.explained_variance, plane.explained_variance)
    else:
        assert loaded.explained_variance is None
    assert loaded.method == method
    assert loaded.axis_labels() == plane.axis_labels()


def test_axis_labels() -> None:
    plane = project(trajectory_of(random_walk()), "pca")
    first, second = plane.axis_labels()
    assert first == f"principal component 0, {100 * plane.explained_variance[0]:.1f}%"
    assert re.fullmatch(r"principal component 1, \d+\.\d%", second)
    assert project(trajectory_of(random_walk()), "random", seed=0).axis_labels() == (
        "direction 0",
        "direction 1",
    )


@settings(max_examples=25, deadline=None)
@given(
    T=st.integers(1, 6),
    n=st.integers(3, 12),
    seed=st.integers(0, 2**16),
    scale=st.floats(1e-3, 1e3),
)
def test_plane_identity_property(T: int, n: int, seed: int, scale: float) -> None:
    """Points built on a plane come back as their coordinates, at distance 0; point() inverts."""
    layout = ParamLayout(("w",), ((n,),))
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(2, n))
    if abs(np.linalg.det(D @ D.T)) < 1e-6 * np.prod(np.sum(D**2, axis=1)):
        return  # nearly parallel: refused, tested elsewhere
    origin = rng.normal(size=n) * scale
    coords = np.vstack([rng.normal(size=(T, 2)) * scale, np.zeros((1, 2))])
    params = origin + coords @ D
    plane = fit_plane([params], origin, layout, "custom", directions=tuple(D))
    np.testing.assert_allclose(plane.path_2d, coords, atol=1e-6 * scale)
    np.testing.assert_allclose(plane.off_plane_distance, 0.0, atol=1e-5 * scale)
    for (x, y), row in zip(plane.path_2d, params, strict=True):
        np.testing.assert_allclose(plane.point(x, y), row, atol=1e-6 * scale)


@pytest.mark.parametrize("seed", [-4, 2**64 - 4])
def test_a_straight_path_is_completed_from_any_torch_seed(seed) -> None:
    """numpy takes non-negative seeds only: a negative seed is read as torch reads it, its 64-bit
    two's complement."""
    line = np.outer(np.linspace(-1.0, 0.0, 5), np.arange(1.0, P + 1)).astype(np.float32)
    plane = project(trajectory_of(line), "pca", seed=seed)
    assert plane.explained_variance[1] == 0.0
    assert plane.axis_labels()[1] == "random direction 1 (the path has no variance left)"
    np.testing.assert_allclose(plane.directions @ plane.directions.T, np.eye(2), atol=1e-12)
    np.testing.assert_array_equal(
        plane.directions, project(trajectory_of(line), "pca", seed=2**64 - 4).directions
    )
