"""``project(..., "hessian")``: the top two Hessian eigenvectors at the final weights, against the
float64 dense Hessian; the same with ``"custom"``; argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hessian_oracle import chain_model, dense_hessian
from loss_landscape_anim import Trajectory, project
from loss_landscape_anim.directions import fit_plane
from loss_landscape_anim.params.layout import ParamLayout
from oracle import spirals


@pytest.fixture(scope="module")
def setup():
    model = chain_model()
    rng = np.random.default_rng(0)
    w = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    rows = (w + np.cumsum(0.1 * rng.standard_normal((5, w.size)), axis=0)[::-1]).astype(np.float32)
    T = rows.shape[0]
    trajectory = Trajectory(
        rows, np.zeros(T), np.zeros(T), np.arange(T), ParamLayout.of(model), "sgd", 0.1
    )
    return model, spirals(60), trajectory


def test_the_plane_is_spanned_by_the_top_two_eigenvectors(setup):
    model, (X, y), trajectory = setup
    plane = project(trajectory, "hessian", model=model, data=(X, y), seed=0)
    assert plane.method == "hessian"
    assert plane.axis_labels() == ("Hessian eigenvector 1 (largest)", "Hessian eigenvector 2")
    np.testing.assert_allclose(plane.directions @ plane.directions.T, np.eye(2), atol=1e-6)
    H = dense_hessian(model, X, y, trajectory.final_params)
    eigenvalues, eigenvectors = np.linalg.eigh(H)
    for k in range(2):
        reference = eigenvectors[:, -1 - k]
        assert abs(abs(plane.directions[k] @ reference) - 1) < 1e-4
        # the eigen equation, with the eigenvalue's own scale
        residual = H @ plane.directions[k] - eigenvalues[-1 - k] * plane.directions[k]
        assert np.linalg.norm(residual) < 1e-3 * eigenvalues[-1]
    # the path starts at negative coordinates, and the plane passes through the final weights
    assert (plane.path_2d[0] < 0).all()
    np.testing.assert_allclose(plane.path_2d[-1], 0, atol=1e-6)


def test_the_same_directions_as_custom(setup):
    model, data, trajectory = setup
    plane = project(trajectory, "hessian", model=model, data=data, seed=0)
    custom = project(trajectory, "custom", directions=tuple(plane.directions))
    np.testing.assert_array_equal(custom.path_2d, plane.path_2d)


def test_fit_plane_with_hessian_directions_for_several_paths(setup):
    model, data, trajectory = setup
    other = np.asarray(trajectory.params)[::-1].copy()
    plane = fit_plane(
        [trajectory.params, other],
        trajectory.final_params,
        trajectory.layout,
        "hessian",
        model=model,
        data=data,
    )
    np.testing.assert_allclose(
        plane.directions, project(trajectory, "hessian", model=model, data=data).directions
    )


def test_hessian_needs_the_model_and_its_data(setup):
    model, data, trajectory = setup
    with pytest.raises(
        ValueError, match=r"reduction_method='hessian' needs the model and its data"
    ):
        project(trajectory, "hessian", model=model)
    with pytest.raises(ValueError, match=r"model and data are for reduction_method='hessian'"):
        project(trajectory, "pca", model=model, data=data)
