"""``curvature_along_path(..., density=True)``: the spectral density at each row against the
exact spectral measure of the same start vectors under the float64 dense Hessian of that row;
one row's density equals ``hessian_density`` there; densities save and load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hessian_oracle import F32_RTOL, chain_model, dense_hessian
from loss_landscape_anim import PathCurvature, Trajectory, curvature_along_path, hessian_density
from loss_landscape_anim.evaluate.trace_estimators import rademacher
from loss_landscape_anim.params.layout import ParamLayout
from loss_landscape_anim.results.density import smoothed_density
from oracle import spirals
from tolerance import SAFETY


@pytest.fixture(scope="module")
def path():
    model = chain_model()
    X, y = spirals(60)
    rng = np.random.default_rng(0)
    w0 = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    rows = (w0 + np.cumsum(0.2 * rng.standard_normal((4, w0.size)), axis=0)).astype(np.float32)
    trajectory = Trajectory(
        rows, np.zeros(4), np.zeros(4), np.arange(4) * 10, ParamLayout.of(model), "sgd", 0.5
    )
    return model, (X, y), trajectory


def test_each_rows_density_is_the_spectral_measure_of_the_start_vectors(path):
    model, (X, y), trajectory = path
    R, seed = 3, 5
    found = curvature_along_path(
        model,
        (X, y),
        trajectory,
        density=True,
        density_runs=R,
        density_steps=60,
        seed=seed,
        progress=False,
    )
    assert found.has_density and found.n_params == 54
    assert found.density_nodes.shape == (4, R, 54)
    # The same Rademacher start vectors at every row, drawn from the seed.
    q = rademacher(R, 54, torch.Generator().manual_seed(seed)).numpy() / np.sqrt(54)
    for k, row in enumerate(found.rows):
        eigenvalues, U = np.linalg.eigh(dense_hessian(model, X, y, trajectory.params[row]))
        # With as many steps as parameters the quadrature is exact: run r puts the weight
        # (q_r . u_i)^2 on eigenvalue i; compare the smoothed measures.
        sigma = 0.05 * (eigenvalues[-1] - eigenvalues[0])
        grid = np.linspace(eigenvalues[0] - 5 * sigma, eigenvalues[-1] + 5 * sigma, 501)
        exact = smoothed_density(np.tile(eigenvalues, (R, 1)), (q @ U) ** 2, grid, sigma)
        estimate = found.density(k).density(grid, sigma)
        # A node off by e moves its Gaussian by at most e max|g'| = e / (sigma^2 sqrt(2 pi e));
        # a weight off by e changes the density by at most e / (sigma sqrt(2 pi)). Both errors
        # are the float32 rounding of the products: F32_RTOL times the spectral radius, F32_RTOL.
        radius = np.abs(eigenvalues).max()
        node = F32_RTOL * radius / (sigma**2 * np.sqrt(2 * np.pi * np.e))
        weight = F32_RTOL * eigenvalues.size / (sigma * np.sqrt(2 * np.pi))
        np.testing.assert_allclose(estimate, exact, atol=SAFETY * (node + weight))
        assert found.density(k).trace == pytest.approx(
            float(np.einsum("rp,pq,rq->", q, dense_hessian(model, X, y, trajectory.params[row]), q))
            * 54
            / R,
            rel=10 * F32_RTOL,
        )


def test_a_rows_density_is_the_single_point_density(path):
    model, data, trajectory = path
    found = curvature_along_path(
        model,
        data,
        trajectory,
        rows=[2],
        density=True,
        density_runs=2,
        density_steps=10,
        seed=1,
        progress=False,
    )
    k = int(np.nonzero(found.rows == 2)[0][0])
    at_row = hessian_density(model, data, n_runs=2, n_steps=10, seed=1, params=trajectory.params[2])
    scale = np.abs(at_row.nodes).max()
    np.testing.assert_allclose(found.density(k).nodes, at_row.nodes, atol=1e3 * F32_RTOL * scale)
    grid = np.linspace(-2, 2, 50)
    assert found.densities(grid, 0.1).shape == (len(found), 50)


def test_densities_save_and_load_and_are_optional(tmp_path, path):
    model, data, trajectory = path
    found = curvature_along_path(
        model, data, trajectory, density=True, density_runs=2, density_steps=6, progress=False
    )
    back = PathCurvature.load(found.save(tmp_path / "p.npz"))
    np.testing.assert_array_equal(back.density_weights, found.density_weights)
    assert back.n_params == 54 and back.has_density
    plain = curvature_along_path(model, data, trajectory, progress=False)
    assert not plain.has_density
    with pytest.raises(ValueError, match="has no densities: compute it with"):
        plain.density(0)
    with pytest.raises(ValueError, match="Expected both density_nodes and density_weights"):
        PathCurvature(
            found.rows,
            found.steps,
            found.lambda_max,
            found.lambda_min,
            density_nodes=found.density_nodes,
        )
    with pytest.raises(ValueError, match="Expected density_runs to be a positive integer"):
        curvature_along_path(model, data, trajectory, density=True, density_runs=0)
