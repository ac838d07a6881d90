"""A plane knows the tensors it spans, and a path always does: a model whose trainable parameters
are others, even as many values, is refused by every evaluation on the plane or along the path
instead of giving a wrong landscape."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from loss_landscape_anim import (
    MLP,
    Plane,
    SpiralsDataModule,
    compute_loss_grid,
    curvature_along_path,
    curvature_grid,
    decision_regions,
    fill_losses,
    path_losses,
    project,
    train,
)
from loss_landscape_anim.errors import IncompatibleFileError
from token_oracle import PrefixLM, direct_loss, token_batches
from tolerance import EPS64

SHAPES = [(3, 7), (2, 12)]
#: The refusal names both sets of tensors and the first that differs.
REFUSED = r"span the model's parameters.*embed\.weight.*but it spans 45.*mix\.weight"


def frozen(part: str) -> PrefixLM:
    """PrefixLM(vocab=5, width=4) with ``part`` frozen: ``embed`` and ``mix`` each hold 20
    values, so either leaves 45 trainable."""
    model = PrefixLM(vocab=5, width=4).double()
    getattr(model, part).requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def run():
    batches = token_batches(SHAPES, vocab=5)
    model = frozen("embed")  # trains mix and head
    trajectory = train(model, DataLoader(batches, batch_size=None), 2, seed=0, progress=False)
    return model, batches, trajectory, project(trajectory, "pca")


def test_the_plane_keeps_the_layout_of_its_trajectory(run, tmp_path) -> None:
    _, _, trajectory, plane = run
    assert plane.layout == trajectory.layout and plane.layout.n_params == 45
    loaded = Plane.load(plane.save(tmp_path / "plane.npz"))
    assert loaded.layout == plane.layout
    made = Plane(plane.origin, plane.directions, plane.path_2d, plane.off_plane_distance)
    assert Plane.load(made.save(tmp_path / "made.npz")).layout is None


def test_the_recording_model_evaluates_the_plane(run) -> None:
    model, batches, _, plane = run
    grid = compute_loss_grid(model, DataLoader(batches, batch_size=None), plane, resolution=2)
    reference = direct_loss(model, plane.point(grid.xs[0], grid.ys[0]), batches)[0]
    assert abs(grid.loss[0, 0] - reference) <= 1e3 * EPS64 * abs(reference)


def test_a_model_with_other_parameters_frozen_is_refused(run) -> None:
    _, batches, trajectory, plane = run
    other = frozen("mix")  # trains embed and head: also 45 values
    data = DataLoader(batches, batch_size=None)
    with pytest.raises(IncompatibleFileError, match=REFUSED):
        compute_loss_grid(other, data, plane, resolution=2, progress=False)
    with pytest.raises(IncompatibleFileError, match=REFUSED):
        curvature_grid(other, data, plane, resolution=2, progress=False)
    with pytest.raises(IncompatibleFileError, match="Expected the trajectory to " + REFUSED):
        path_losses(other, data, trajectory, plane)


def test_a_path_of_other_tensors_is_refused_on_the_plane(run) -> None:
    _, batches, _, plane = run
    other = train(frozen("mix"), DataLoader(batches, batch_size=None), 2, seed=0, progress=False)
    assert other.n_params == plane.origin.shape[0]
    with pytest.raises(IncompatibleFileError, match="Expected the trajectory to span"):
        plane.with_path(other)
    assert np.array_equal(plane.with_path(run[2]).path_2d, plane.path_2d)


def test_every_analysis_of_a_path_refuses_a_model_with_other_parameters_frozen(run) -> None:
    _, batches, trajectory, _ = run
    other = frozen("mix")
    data = DataLoader(batches, batch_size=None)
    refused = "Expected the trajectory to " + REFUSED
    with pytest.raises(IncompatibleFileError, match=refused):
        fill_losses(trajectory, other, data, overwrite=True)
    with pytest.raises(IncompatibleFileError, match=refused):
        curvature_along_path(other, data, trajectory, rows=[0], max_iter=5)


def test_the_recording_model_fills_the_losses_of_its_path(run) -> None:
    model, batches, trajectory, _ = run
    filled = fill_losses(trajectory, model, DataLoader(batches, batch_size=None), overwrite=True)
    reference = direct_loss(model, np.asarray(trajectory.params[-1]), batches)[0]
    assert abs(filled.loss[-1] - reference) <= 1e3 * EPS64 * abs(reference)


def test_a_plane_saved_without_its_layout_is_checked_by_its_count(run, tmp_path) -> None:
    model, batches, _, plane = run
    data = DataLoader(batches, batch_size=None)
    legacy = Plane(plane.origin, plane.directions, plane.path_2d, plane.off_plane_distance)
    legacy = Plane.load(legacy.save(tmp_path / "legacy.npz"))
    assert legacy.layout is None
    grid = compute_loss_grid(model, data, legacy, resolution=2)
    reference = direct_loss(model, legacy.point(grid.xs[0], grid.ys[0]), batches)[0]
    assert abs(grid.loss[0, 0] - reference) <= 1e3 * EPS64 * abs(reference)
    whole = PrefixLM(vocab=5, width=4).double()  # 85 trainable values, not 45
    with pytest.raises(ValueError, match="one value per parameter"):
        compute_loss_grid(whole, data, legacy, resolution=2)


def classifier(frozen_layer: int) -> MLP:
    """A 2-input classifier with ``layers.<frozen_layer>`` frozen: its hidden layers ``layers.2``
    and ``layers.4`` hold 12 values each, so freezing either leaves as many trainable values."""
    torch.manual_seed(0)
    model = MLP(2, 3, num_hidden_layers=3, hidden_dim=3, learning_rate=0.05)
    model.layers[frozen_layer].requires_grad_(False)
    return model


def test_decision_regions_refuse_a_classifier_with_other_layers_frozen() -> None:
    data = SpiralsDataModule()
    model = classifier(2)
    trajectory = train(model, data, 2, progress=False)
    rows = np.array([0, len(trajectory) - 1])
    regions = decision_regions(model, data, trajectory, rows, resolution=5)
    X, _ = data.dataset.tensors
    low, high = X.min(0).values, X.max(0).values
    pad = 0.1 * (high - low)
    gx = np.linspace(float(low[0] - pad[0]), float(high[0] + pad[0]), 5)
    gy = np.linspace(float(low[1] - pad[1]), float(high[1] + pad[1]), 5)
    GX, GY = np.meshgrid(gx, gy)
    inputs = torch.tensor(np.stack([GX.ravel(), GY.ravel()], 1), dtype=torch.float32)
    for k, row in enumerate(rows):
        oracle = trajectory.apply_to(copy.deepcopy(model), int(row))
        with torch.no_grad():
            expected = oracle(inputs).argmax(1).reshape(5, 5).numpy()
        np.testing.assert_array_equal(regions.classes[k], expected)
    with pytest.raises(
        IncompatibleFileError,
        match=r"trajectory to span the model's.*layers\.2\.weight.*but it spans.*layers\.4\.weight",
    ):
        decision_regions(classifier(4), data, trajectory, rows, resolution=5)
