"""``curvature_grid`` and ``curvature_along_path`` against the float64 dense Hessian at their
points; the grid's axes; saved results; argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hessian_oracle import F32_RTOL, chain_model, dense_hessian
from loss_landscape_anim import (
    CurvatureGrid,
    IncompatibleFileError,
    PathCurvature,
    Trajectory,
    compute_loss_grid,
    curvature_along_path,
    curvature_grid,
    project,
)
from loss_landscape_anim.params.layout import ParamLayout
from loss_landscape_anim.results.curvature import eigenvalue_ratio
from oracle import random_plane, spirals

LANCZOS_TOL = 1e-6


@pytest.fixture(scope="module")
def setup():
    model = chain_model()
    X, y = spirals(60)
    return model, (X, y), random_plane(model, seed=1, scale=2.0)


def oracle_extremes(model, X, y, weights) -> tuple[float, float]:
    eigenvalues = np.linalg.eigvalsh(dense_hessian(model, X, y, weights))
    return eigenvalues[-1], eigenvalues[0]


@pytest.mark.parametrize("method", ["dense", "lanczos"])
def test_the_ratio_map_matches_the_dense_computation(setup, method):
    model, (X, y), plane = setup
    grid = curvature_grid(
        model, (X, y), plane, resolution=4, method=method, tol=LANCZOS_TOL, progress=False
    )
    assert grid.lambda_max.shape == grid.lambda_min.shape == grid.ratio.shape == (4, 4)
    assert grid.method == method
    assert grid.n_products > 0
    for i, j in [(0, 0), (1, 2), (3, 1), (3, 3)]:
        top, bottom = oracle_extremes(model, X, y, plane.point(grid.xs[j], grid.ys[i]))
        bound = (LANCZOS_TOL + F32_RTOL) * max(abs(top), abs(bottom))
        assert abs(grid.lambda_max[i, j] - top) <= bound
        assert abs(grid.lambda_min[i, j] - bottom) <= bound
        expected = abs(bottom / top)
        assert abs(grid.ratio[i, j] - expected) <= 2 * bound / abs(top)


def test_axes_come_from_a_loss_grid_exactly(setup):
    model, data, plane = setup
    loss_grid = compute_loss_grid(model, data, plane, resolution=3, margin=0.5, progress=False)
    grid = curvature_grid(model, data, plane, grid=loss_grid, progress=False)
    np.testing.assert_array_equal(grid.xs, loss_grid.xs)
    np.testing.assert_array_equal(grid.ys, loss_grid.ys)
    assert grid.margin == 0.5 and grid.plane_fingerprint == plane.fingerprint()
    other = project(
        Trajectory(
            np.stack([plane.origin, plane.origin + 1]).astype(np.float32),
            np.zeros(2),
            np.zeros(2),
            np.arange(2),
            ParamLayout.of(model),
        ),
        "random",
        seed=3,
    )
    with pytest.raises(IncompatibleFileError, match="computed on another plane"):
        curvature_grid(model, data, other, grid=loss_grid, progress=False)


def test_the_same_seed_gives_the_same_map_and_it_saves(tmp_path, setup):
    model, data, plane = setup
    a = curvature_grid(model, data, plane, resolution=3, method="lanczos", seed=2, progress=False)
    b = curvature_grid(model, data, plane, resolution=3, method="lanczos", seed=2, progress=False)
    np.testing.assert_array_equal(a.lambda_max, b.lambda_max)
    np.testing.assert_array_equal(a.lambda_min, b.lambda_min)
    back = CurvatureGrid.load(a.save(tmp_path / "c.npz"))
    np.testing.assert_array_equal(back.ratio, a.ratio)
    assert (back.method, back.n_products, back.n_examples, back.precision) == (
        "lanczos",
        a.n_products,
        60,
        "float32",
    )
    back.check_plane(plane)


def test_the_ratio_is_nan_where_undefined():
    ratio = eigenvalue_ratio(np.array([2.0, 0.0, np.nan]), np.array([-1.0, -1.0, -1.0]))
    np.testing.assert_array_equal(ratio, [0.5, np.nan, np.nan])


def path_of(model, n_rows: int = 6) -> Trajectory:
    rng = np.random.default_rng(0)
    w0 = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    rows = w0 + np.cumsum(0.2 * rng.standard_normal((n_rows, w0.size)), axis=0)
    T = n_rows
    return Trajectory(
        rows.astype(np.float32),
        np.zeros(T),
        np.zeros(T),
        np.arange(T) * 10,
        ParamLayout.of(model),
        optimizer="sgd",
        learning_rate=0.25,
    )


def test_path_curvature_at_its_first_and_last_rows(setup):
    model, (X, y), _ = setup
    trajectory = path_of(model)
    found = curvature_along_path(
        model, (X, y), trajectory, every=4, method="lanczos", tol=LANCZOS_TOL, progress=False
    )
    np.testing.assert_array_equal(found.rows, [0, 4, 5])
    np.testing.assert_array_equal(found.steps, [0, 40, 50])
    for k, row in enumerate(found.rows):
        top, bottom = oracle_extremes(model, X, y, trajectory.params[row])
        bound = (LANCZOS_TOL + F32_RTOL) * max(abs(top), abs(bottom))
        assert abs(found.lambda_max[k] - top) <= bound
        assert abs(found.lambda_min[k] - bottom) <= bound
    assert found.optimizer == "sgd" and found.stability_threshold == 8.0


def test_path_rows_and_saving(tmp_path, setup):
    model, data, _ = setup
    trajectory = path_of(model)
    chosen = curvature_along_path(model, data, trajectory, rows=[2, 3], progress=False)
    np.testing.assert_array_equal(chosen.rows, [0, 2, 3, 5])
    every_row = curvature_along_path(model, data, trajectory, progress=False)
    np.testing.assert_array_equal(every_row.rows, np.arange(6))
    np.testing.assert_allclose(every_row.lambda_max[[0, 2, 3, 5]], chosen.lambda_max, rtol=1e-6)
    back = PathCurvature.load(chosen.save(tmp_path / "p.npz"))
    np.testing.assert_array_equal(back.lambda_min, chosen.lambda_min)
    assert (back.optimizer, back.learning_rate, len(back)) == ("sgd", 0.25, 4)
    # the path it was computed along, kept through saving: animate checks it
    assert chosen.trajectory_fingerprint == back.trajectory_fingerprint == trajectory.fingerprint()
    adam = PathCurvature(back.rows, back.steps, back.lambda_max, back.lambda_min, "adam", 0.1)
    assert adam.stability_threshold is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"every": 0}, ValueError, "Expected every to be a positive integer but got 0"),
        ({"rows": [0, 9]}, ValueError, r"Expected rows to be integers in \[0, 5\]"),
        ({"rows": [1], "every": 2}, ValueError, "at most one of every and rows"),
        ({"method": "exact"}, ValueError, "Expected method to be one of 'auto', 'dense'"),
    ],
)
def test_bad_path_arguments(setup, kwargs, error, match):
    model, data, _ = setup
    with pytest.raises(error, match=match):
        curvature_along_path(model, data, path_of(model), progress=False, **kwargs)


def test_bad_grid_arguments(setup):
    model, data, plane = setup
    with pytest.raises(ValueError, match="Expected resolution to be an integer >= 2 but got 1"):
        curvature_grid(model, data, plane, resolution=1)
    with pytest.raises(TypeError, match="Expected grid to be a LossGrid but got dict"):
        curvature_grid(model, data, plane, grid={})
    with pytest.raises(ValueError, match="Expected tol to be a finite number > 0"):
        curvature_grid(model, data, plane, tol=0.0)
