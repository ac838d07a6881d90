"""Trainable subspaces: a model with frozen parameters (``requires_grad=False`` when recording
starts) is recorded, projected, evaluated and drawn over its trainable parameters only, with the
frozen rest at its own values; checked against oracles that load the trainable weights point by
point and a dense Hessian over them."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from loss_landscape_anim import (
    MLP,
    Plane,
    Trajectory,
    compute_loss_grid,
    hessian_eigenvalues,
    project,
    record_training,
    train,
)
from loss_landscape_anim.params import ParamLayout
from oracle import RTOL, spirals
from tolerance import EPS64


def frozen_first_layer(seed: int = 0) -> MLP:
    """The default MLP with its first layer frozen: 153 trainable of 303 parameters."""
    torch.manual_seed(seed)
    model = MLP(input_dim=2, num_classes=3, hidden_dim=50)
    model.layers[0].requires_grad_(False)
    return model


def load_trainable(model: nn.Module, weights: np.ndarray) -> nn.Module:
    """A copy of ``model`` with flat ``weights`` written into its trainable parameters only."""
    work = copy.deepcopy(model).eval()
    trainable = [p for p in work.parameters() if p.requires_grad]
    torch.nn.utils.vector_to_parameters(torch.as_tensor(weights, dtype=torch.float32), trainable)
    return work


def test_the_layout_holds_the_trainable_parameters_only() -> None:
    model = frozen_first_layer()
    layout = ParamLayout.of(model)
    assert layout.names == ("layers.2.weight", "layers.2.bias")
    assert layout.n_params == 153 and ParamLayout.of_all(model).n_params == 303
    assert layout.subspace(150) == "153 trainable of 303 weights: layers"
    everything = model.requires_grad_(False)  # a model that is only evaluated: all of them
    assert ParamLayout.of(everything).n_params == 303


def test_training_records_the_trainable_weights_and_keeps_the_frozen_ones() -> None:
    model = frozen_first_layer()
    frozen_before = model.layers[0].weight.detach().clone()
    trajectory = train(model, spirals(), 20, seed=0, progress=False)
    assert trajectory.n_params == 153 and trajectory.frozen == 150
    assert trajectory.layout.names == ("layers.2.weight", "layers.2.bias")
    assert trajectory.subspace == "153 trainable of 303 weights: layers"
    trained = trajectory.apply_to(copy.deepcopy(model))
    assert torch.equal(trained.layers[0].weight, frozen_before)  # bit-identical
    np.testing.assert_array_equal(
        ParamLayout.of(trained).flatten(trained).numpy(), trajectory.final_params
    )
    assert not np.array_equal(trajectory.params[0], trajectory.params[-1])


def test_a_loop_of_your_own_leaves_the_frozen_weights_bit_identical() -> None:
    model = frozen_first_layer()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    X, y = spirals()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)  # frozen ones get no gradient
    with record_training(model, optimizer) as recording:
        for _ in range(5):
            loss = nn.functional.cross_entropy(model(X), y)
            recording.report_loss(loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    trajectory = recording.trajectory()
    assert trajectory.n_params == 153 and len(trajectory) == 6
    for name in ("layers.0.weight", "layers.0.bias"):
        assert torch.equal(dict(model.named_parameters())[name], before[name])
    assert not torch.equal(model.layers[2].weight, before["layers.2.weight"])


def test_a_subspace_trajectory_round_trips_and_refuses_another_model(tmp_path) -> None:
    trajectory = train(frozen_first_layer(), spirals(), 3, seed=0, progress=False)
    loaded = Trajectory.load(trajectory.save(tmp_path / "t.npz"))
    assert loaded.layout == trajectory.layout and loaded.frozen == 150
    np.testing.assert_array_equal(loaded.params, trajectory.params)
    # the same architecture trained whole has another layout: refused, not half-loaded
    with pytest.raises(Exception, match="Expected a model with 153 parameters"):
        trajectory.apply_to(MLP(input_dim=2, num_classes=3).requires_grad_(True))
    # a model with the same frozen layer takes the rows; so does one frozen entirely
    trajectory.apply_to(frozen_first_layer(seed=1))


def test_planes_of_a_subspace_say_so_in_their_axis_labels() -> None:
    trajectory = train(frozen_first_layer(), spirals(), 20, seed=0, progress=False)
    for method in ("pca", "random", "filter"):
        plane = project(trajectory, method, seed=0)
        assert plane.directions.shape == (2, 153)
        assert plane.subspace == "153 trainable of 303 weights: layers"
        assert all(
            label.endswith("\n(153 trainable of 303 weights: layers)")
            for label in plane.axis_labels()
        )
    filtered = project(trajectory, "filter", seed=0)
    # Li et al.'s filter normalisation: each row of the (3, 50) weight scaled to its norm,
    # the bias (1-D) zero
    weight = trajectory.final_params[:150].astype(np.float64).reshape(3, 50)
    rows = filtered.directions[:, :150].reshape(2, 3, 50)
    np.testing.assert_allclose(
        np.linalg.norm(rows, axis=2), np.tile(np.linalg.norm(weight, axis=1), (2, 1)), rtol=1e-12
    )
    assert not filtered.directions[:, 150:].any()


def test_the_grid_of_a_subspace_loads_its_weights_point_by_point() -> None:
    model = frozen_first_layer()
    trajectory = train(model, spirals(), 20, seed=0, progress=False)
    trained = trajectory.apply_to(copy.deepcopy(model))
    plane = project(trajectory, "pca")
    X, y = spirals(200)
    grid = compute_loss_grid(trained, (X, y), plane, resolution=4, progress=False)
    for i, yv in enumerate(grid.ys):
        for j, xv in enumerate(grid.xs):
            work = load_trainable(trained, plane.point(xv, yv))
            with torch.no_grad():
                expected = float(nn.functional.cross_entropy(work(X), y))
            assert grid.loss[i, j] == pytest.approx(expected, rel=RTOL)


def test_curvature_of_a_subspace_is_that_of_its_trainable_weights() -> None:
    model = frozen_first_layer().double()
    X, y = spirals(100)
    spectrum = hessian_eigenvalues(model, (X.double(), y), k=2, seed=0)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    w = torch.cat([dict(model.named_parameters())[n].detach().reshape(-1) for n in names])

    def loss(flat: torch.Tensor) -> torch.Tensor:
        params = ParamLayout.of(model).unflatten(flat)
        assert set(params) == set(names)
        return nn.functional.cross_entropy(functional_call(model, params, (X.double(),)), y)

    H = torch.autograd.functional.hessian(loss, w).numpy()
    assert H.shape == (153, 153)
    eigenvalues = np.linalg.eigvalsh(H)
    scale = np.abs(eigenvalues).max()
    np.testing.assert_allclose(spectrum.largest, eigenvalues[::-1][:2], atol=1e-4 * scale)
    np.testing.assert_allclose(spectrum.smallest, eigenvalues[:2], atol=1e-4 * scale + EPS64)


def test_points_of_the_whole_model_are_refused_for_a_subspace_with_what_differs() -> None:
    model = frozen_first_layer()
    whole = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double().numpy()
    plane = Plane(whole, np.eye(2, whole.size), np.zeros((1, 2)), np.zeros(1))
    with pytest.raises(ValueError, match=r"\(153 trainable of 303 parameters.* but got 303"):
        compute_loss_grid(model, spirals(30), plane, resolution=2, progress=False)
