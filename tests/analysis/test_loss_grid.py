"""Tests of ``compute_loss_grid`` and ``path_losses`` against a slow per-point oracle: load the
weights ``plane.point(x, y)`` into a copy of the model and compute the mean loss over all the data.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import vector_to_parameters

from loss_landscape_anim import (
    DataError,
    IncompatibleFileError,
    LossGrid,
    compute_loss_grid,
    path_losses,
)
from loss_landscape_anim.analysis.loss_grid import MIN_ASPECT, grid_axes
from loss_landscape_anim.data import SpiralsDataModule
from loss_landscape_anim.directions import project
from loss_landscape_anim.models import MLP
from loss_landscape_anim.params import ParamLayout
from loss_landscape_anim.record import train
from loss_landscape_anim.results import Plane
from oracle import RTOL, loss_at, oracle_grid, random_plane, spirals

# --- oracle and fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_mlp() -> tuple[MLP, Plane, object]:
    torch.manual_seed(0)
    model = MLP(2, 3, hidden_dim=10, learning_rate=0.05)
    trajectory = train(model, spirals(), 8, progress=False)
    final = copy.deepcopy(model)
    vector_to_parameters(torch.from_numpy(trajectory.final_params), final.parameters())
    return final, project(trajectory, "pca"), trajectory


def test_n_examples_uses_the_first_examples(trained_mlp) -> None:
    model, plane, _ = trained_mlp
    grid = compute_loss_grid(
        model, SpiralsDataModule(), plane, resolution=3, n_examples=50, progress=False
    )
    np.testing.assert_allclose(grid.loss, oracle_grid(model, *spirals(50), plane, grid), rtol=RTOL)


# --- coordinates and orientation ----------------------------------------------------------------


def test_grid_covers_the_path_plus_margin(trained_mlp) -> None:
    model, plane, _ = trained_mlp
    grid = compute_loss_grid(model, spirals(20), plane, resolution=7, margin=0.25, progress=False)
    path = plane.path_2d
    low, high = path.min(axis=0), path.max(axis=0)
    span = high - low
    np.testing.assert_allclose(
        [grid.xs[0], grid.xs[-1]], [low[0] - 0.25 * span[0], high[0] + 0.25 * span[0]]
    )
    np.testing.assert_allclose(
        [grid.ys[0], grid.ys[-1]], [low[1] - 0.25 * span[1], high[1] + 0.25 * span[1]]
    )
    np.testing.assert_allclose(np.diff(grid.xs), np.diff(grid.xs)[0])
    assert grid.resolution == 7


def test_extra_paths_widen_the_grid(trained_mlp) -> None:
    model, plane, _ = trained_mlp
    far = np.array([[50.0, -40.0]])
    grid = compute_loss_grid(
        model, spirals(20), plane, resolution=3, margin=0.0, extra_paths=[far], progress=False
    )
    assert grid.xs[-1] == pytest.approx(50.0)
    assert grid.ys[0] == pytest.approx(-40.0)


def test_orientation_loss_i_j_is_at_xs_j_ys_i() -> None:
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 3))
    plane = random_plane(model, scale=3.0)
    X, y = spirals(100)
    grid = compute_loss_grid(model, (X, y), plane, resolution=5, margin=0.5, progress=False)
    i, j = 1, 4
    assert abs(grid.loss[i, j] - grid.loss[j, i]) > 1e-3  # the check below can tell them apart
    expected = loss_at(model, plane.point(grid.xs[j], grid.ys[i]), X, y)
    assert grid.loss[i, j] == pytest.approx(expected, rel=RTOL)
    assert grid.loss[j, i] != pytest.approx(expected, rel=RTOL)


@settings(max_examples=30, deadline=None)
@given(
    points=st.lists(
        st.tuples(*[st.floats(-1e3, 1e3, allow_subnormal=False)] * 2), min_size=1, max_size=8
    ),
    resolution=st.integers(2, 12),
    margin=st.floats(0.0, 2.0),
)
def test_grid_axes_property(points, resolution: int, margin: float) -> None:
    path = np.array(points)
    xs, ys = grid_axes([path], resolution, margin)
    assert xs.shape == ys.shape == (resolution,)
    every = np.vstack([path, np.zeros((1, 2))])  # the origin (0, 0) is always on the grid
    for axis, coords in enumerate((xs, ys)):
        assert coords[0] < coords[-1]
        assert np.all(np.diff(coords) > 0)
        tol = 1e-9 * (1 + np.abs(coords).max())
        assert coords[0] <= every[:, axis].min() + tol
        assert coords[-1] >= every[:, axis].max() - tol
    spans = every.max(axis=0) - every.min(axis=0)
    largest = spans.max() or 1.0
    for axis, coords in enumerate((xs, ys)):
        span = spans[axis]
        tol = 1e-9 * (1 + np.abs(coords).max())
        if span >= MIN_ASPECT * largest:
            assert coords[0] == pytest.approx(every[:, axis].min() - margin * span, abs=tol)
            assert coords[-1] == pytest.approx(every[:, axis].max() + margin * span, abs=tol)
        else:  # widened about its centre to MIN_ASPECT of the wider axis, then the margin
            width = MIN_ASPECT * largest * (1 + 2 * margin)
            assert coords[-1] - coords[0] == pytest.approx(width, rel=1e-9, abs=tol)
            centre = (every[:, axis].min() + every[:, axis].max()) / 2
            assert (coords[0] + coords[-1]) / 2 == pytest.approx(centre, abs=tol)


# --- LossGrid -----------------------------------------------------------------------------------


def test_argmin_and_loss_min_match_nanargmin() -> None:
    rng = np.random.default_rng(0)
    xs, ys = np.linspace(-1, 1, 5), np.linspace(0, 3, 5)
    loss = rng.uniform(size=(5, 5))
    grid = LossGrid.from_values(xs, ys, loss)
    i, j = np.unravel_index(np.nanargmin(loss), loss.shape)
    assert (i, j) != (j, i)  # an asymmetric minimum, so a transposed argmin would fail
    assert grid.loss_min == loss[i, j]
    np.testing.assert_array_equal(grid.argmin, [xs[j], ys[i]])


def test_non_finite_values_are_ignored() -> None:
    xs, ys = np.arange(3.0), np.arange(3.0) + 10
    loss = np.array([[np.nan, 5.0, np.inf], [-np.inf, 4.0, 2.5], [3.0, np.nan, 7.0]])
    grid = LossGrid.from_values(xs, ys, loss)
    assert grid.loss_min == 2.5
    np.testing.assert_array_equal(grid.argmin, [2.0, 11.0])
    empty = LossGrid.from_values(xs, ys, np.full((3, 3), np.nan))
    assert np.isnan(empty.loss_min)
    assert np.isnan(empty.argmin).all()


def test_loss_grid_save_load_round_trip(tmp_path: Path, trained_mlp) -> None:
    model, plane, _ = trained_mlp
    grid = compute_loss_grid(model, spirals(30), plane, resolution=4, progress=False)
    loaded = LossGrid.load(grid.save(tmp_path / "grid.npz"))
    for name in ("xs", "ys", "loss", "argmin"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(grid, name))
    assert loaded.loss_min == grid.loss_min
    assert (loaded.margin, loaded.n_examples, loaded.precision) == (0.3, 30, "float32")
    assert loaded.plane_fingerprint == plane.fingerprint()
    loaded.check_plane(plane)


def test_a_grid_refuses_another_plane(trained_mlp) -> None:
    model, plane, _ = trained_mlp
    grid = compute_loss_grid(model, spirals(30), plane, resolution=3, progress=False)
    other = Plane(
        plane.origin, plane.directions[::-1].copy(), plane.path_2d, plane.off_plane_distance
    )
    with pytest.raises(IncompatibleFileError, match="computed on another plane"):
        grid.check_plane(other)


# --- arguments and the caller's model -----------------------------------------------------------


def test_argument_errors(trained_mlp) -> None:
    model, plane, _ = trained_mlp
    data = spirals(10)
    with pytest.raises(ValueError, match="Expected resolution to be an integer >= 2 but got 1"):
        compute_loss_grid(model, data, plane, resolution=1)
    with pytest.raises(ValueError, match="Expected resolution to be an integer >= 2 but got 0"):
        compute_loss_grid(model, data, plane, resolution=0)
    with pytest.raises(
        ValueError, match=r"Expected margin to be a finite number >= 0 but got -0.1"
    ):
        compute_loss_grid(model, data, plane, margin=-0.1)
    with pytest.raises(ValueError, match="Expected chunk_size to be a positive integer but got 0"):
        compute_loss_grid(model, data, plane, chunk_size=0)
    with pytest.raises(TypeError, match=r"Expected model to be a torch.nn.Module but got dict"):
        compute_loss_grid({}, data, plane)


def test_the_callers_model_is_not_changed(trained_mlp) -> None:
    model, _, _ = trained_mlp
    model = copy.deepcopy(model).train()
    model.layers[0].bias.requires_grad_(False)
    before = copy.deepcopy(model.state_dict())
    # the plane spans the trainable parameters: every one but the frozen bias
    origin = ParamLayout.of(model).flatten(model).double().numpy()
    assert origin.size == sum(p.numel() for p in model.parameters()) - model.layers[0].bias.numel()
    D = np.random.default_rng(0).normal(size=(2, origin.size))
    plane = Plane(origin, D, np.zeros((1, 2)), np.zeros(1))
    compute_loss_grid(model, spirals(30), plane, resolution=3, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training
    assert not model.layers[0].bias.requires_grad
    assert model.layers[0].weight.requires_grad


# --- path losses --------------------------------------------------------------------------------


def test_path_losses(trained_mlp) -> None:
    model, plane, trajectory = trained_mlp
    X, y = spirals(300)
    losses = path_losses(model, (X, y), trajectory, plane)
    true, projected = losses.true, losses.projected
    assert true.shape == projected.shape == (len(trajectory),)
    expected_true = [loss_at(model, row, X, y) for row in trajectory.params]
    expected_projected = [loss_at(model, plane.point(*c), X, y) for c in plane.path_2d]
    np.testing.assert_allclose(true, expected_true, rtol=RTOL)
    np.testing.assert_allclose(projected, expected_projected, rtol=RTOL)
    assert projected[-1] == pytest.approx(true[-1], rel=RTOL)
    assert np.abs(true[:-1] - projected[:-1]).max() > 1e-4  # the plane does not hold the path


def test_path_losses_of_selected_rows(trained_mlp) -> None:
    model, plane, trajectory = trained_mlp
    data = spirals(100)
    every_row = path_losses(model, data, trajectory, plane)
    rows = np.array([0, 3, len(trajectory) - 1])
    some = path_losses(model, data, trajectory, plane, rows, chunk_size=2)
    np.testing.assert_allclose(some.true[rows], every_row.true[rows], rtol=RTOL)
    np.testing.assert_allclose(some.projected[rows], every_row.projected[rows], rtol=RTOL)
    others = np.setdiff1d(np.arange(len(trajectory)), rows)
    assert np.isnan(some.true[others]).all() and np.isnan(some.projected[others]).all()


# --- hostile evaluation data ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8])
def test_integer_labels_of_any_dtype_evaluate_like_int64(trained_mlp, dtype) -> None:
    model, plane, _ = trained_mlp
    X, y = spirals(40)
    wide = compute_loss_grid(model, (X, y), plane, resolution=np.int64(3), progress=False)
    narrow = compute_loss_grid(model, (X, y.to(dtype)), plane, resolution=3, progress=False)
    np.testing.assert_array_equal(narrow.loss, wide.loss)


def test_non_finite_evaluation_inputs_are_named(trained_mlp) -> None:
    model, plane, _ = trained_mlp
    X, y = spirals(40)
    X = X.clone()
    X[33, 1] = float("-inf")
    with pytest.raises(
        DataError, match=r"The evaluation inputs hold 1 non-finite value .* example 33"
    ):
        compute_loss_grid(model, (X, y), plane, resolution=3, progress=False)
