"""A plane knows the tensors it spans: a model whose trainable parameters are others, even as
many values, is refused by every evaluation on the plane instead of giving a wrong landscape."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import DataLoader

from loss_landscape_anim import (
    Plane,
    compute_loss_grid,
    curvature_grid,
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
