"""Tests of ``decision_regions``: the predicted class over the input plane, per recorded row."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import vector_to_parameters

from loss_landscape_anim import MLP, SpiralsDataModule, decision_regions, train


@pytest.fixture(scope="module")
def run():
    torch.manual_seed(0)
    model = MLP(2, 3, hidden_dim=8, learning_rate=0.05)
    data = SpiralsDataModule()
    return model, data, train(model, data, 6, progress=False)


def test_each_image_is_the_argmax_of_that_rows_weights(run) -> None:
    model, data, trajectory = run
    rows = np.array([0, 3, len(trajectory) - 1])
    regions = decision_regions(model, data, trajectory, rows, resolution=9, margin=0.2)
    assert regions.classes.shape == (3, 9, 9) and regions.classes.dtype == np.uint8
    np.testing.assert_array_equal(regions.rows, rows)
    x_min, x_max, y_min, y_max = regions.extent
    X, _ = data.dataset.tensors
    span = X.max(0).values - X.min(0).values
    assert x_min == pytest.approx(float(X[:, 0].min() - 0.2 * span[0]), rel=1e-6)
    assert y_max == pytest.approx(float(X[:, 1].max() + 0.2 * span[1]), rel=1e-6)
    gx, gy = np.linspace(x_min, x_max, 9), np.linspace(y_min, y_max, 9)
    GX, GY = np.meshgrid(gx, gy)
    inputs = torch.tensor(np.stack([GX.ravel(), GY.ravel()], 1), dtype=torch.float32)
    for k, row in enumerate(rows):
        oracle = nn.Sequential(*[m for m in model.modules() if isinstance(m, nn.Linear | nn.ReLU)])
        vector_to_parameters(torch.from_numpy(trajectory.params[row]), oracle.parameters())
        with torch.no_grad():
            expected = oracle(inputs).argmax(1).reshape(9, 9).numpy()
        np.testing.assert_array_equal(regions.classes[k], expected)  # row 0 is the lowest y


def test_data_points_are_thinned_evenly_and_keep_their_labels(run) -> None:
    model, data, trajectory = run
    regions = decision_regions(model, data, trajectory, np.array([0]), max_points=10)
    X, y = data.dataset.tensors
    keep = np.linspace(0, len(X) - 1, 10).astype(int)
    np.testing.assert_array_equal(regions.points, X.numpy()[keep])
    np.testing.assert_array_equal(regions.labels, y.numpy()[keep])
    assert regions.n_classes == 3


def test_inputs_that_are_not_2d_are_refused(run) -> None:
    model, _, trajectory = run
    data = (torch.randn(10, 3), torch.randint(0, 3, (10,)))
    with pytest.raises(
        ValueError, match=r"need 2-D inputs \(N, 2\) but the data have shape \(10, 3\)"
    ):
        decision_regions(model, data, trajectory, np.array([0]))


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("resolution", 0, "Expected resolution to be a positive integer but got 0"),
        ("margin", -1.0, "Expected margin to be a finite number >= 0 but got -1.0"),
        ("max_points", 0, "Expected max_points to be a positive integer but got 0"),
    ],
)
def test_arguments_are_checked(run, option, value, message) -> None:
    model, data, trajectory = run
    with pytest.raises(ValueError, match=message):
        decision_regions(model, data, trajectory, np.array([0]), **{option: value})


def test_the_callers_model_is_untouched(run) -> None:
    model, data, trajectory = run
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    decision_regions(model, data, trajectory, np.array([len(trajectory) - 1]), resolution=4)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
