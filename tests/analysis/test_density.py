"""``hessian_density`` against the exact spectrum of the float64 dense Hessian: the smoothed
density within the sampling bound of the exact smoothed spectrum, integral 1, mean times P equal
to the trace within the estimator's standard error; the Gauss-Newton density is non-negative;
the result saves, loads and refuses inconsistent arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hessian_oracle import F32_RTOL, chain_model, dense_ggn, dense_hessian
from loss_landscape_anim import HessianDensity, hessian_density
from loss_landscape_anim.results.density import smoothed_density
from oracle import spirals


@pytest.fixture(scope="module")
def tanh_net():
    """51 parameters, a spread spectrum (about 30 distinct eigenvalues of both signs)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    X, y = spirals(200)
    return model, (X, y), np.linalg.eigvalsh(dense_hessian(model, X, y))


def l1_distance(density: HessianDensity, eigenvalues: np.ndarray, sigma: float) -> float:
    grid = np.linspace(eigenvalues[0] - 8 * sigma, eigenvalues[-1] + 8 * sigma, 20001)
    exact = smoothed_density(
        eigenvalues[None], np.full((1, eigenvalues.size), 1 / eigenvalues.size), grid, sigma
    )
    return float(np.trapezoid(np.abs(density.density(grid, sigma) - exact), grid))


def test_the_smoothed_density_is_within_the_sampling_bound_of_the_exact_one(tanh_net):
    model, data, eigenvalues = tanh_net
    R = 20
    density = hessian_density(model, data, n_runs=R, n_steps=60, seed=0)  # capped at P = 51
    assert density.nodes.shape == (R, 51) and density.n_products == R * 51
    assert density.operator == "hessian" and density.n_examples == 200
    # With n_steps = P the quadrature is exact: run r puts weight (q_r . u_i)^2 on eigenvalue i,
    # and the estimate is sum_i wbar_i g(t - lambda_i) against (1/P) sum_i g(t - lambda_i), so
    # L1 <= sum_i |wbar_i - 1/P| + (node error) sqrt(2/pi) / sigma. For Rademacher q,
    # Var((q . u)^2) <= 2 / P^2, hence E sum_i |wbar_i - 1/P| <= sqrt(2 / R); the node error
    # is the float32 rounding of the products.
    spread = eigenvalues[-1] - eigenvalues[0]
    for sigma in (0.01 * spread, 0.05 * spread):
        rounding = F32_RTOL * np.abs(eigenvalues).max() * np.sqrt(2 / np.pi) / sigma
        assert l1_distance(density, eigenvalues, sigma) <= np.sqrt(2 / R) + rounding


def test_integral_one_and_mean_times_p_is_the_trace(tanh_net):
    model, data, eigenvalues = tanh_net
    density = hessian_density(model, data, n_runs=30, n_steps=12, seed=1)
    assert density.n_steps == 12
    sigma = density.default_sigma()
    low, high = density.support
    grid = np.linspace(low - 10 * sigma, high + 10 * sigma, 40001)
    # Trapezoid error of a sum of Gaussians on a step of sigma/200: far below 1e-6.
    assert np.trapezoid(density.density(grid), grid) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(density.weights.sum(axis=1), 1.0, atol=1e-9)
    # Gauss quadrature is exact for degree 1 and 2: the first two moments are Hutchinson-type
    # estimates of trace(H) / P and trace(H^2) / P from the same probes.
    assert abs(density.trace - eigenvalues.sum()) <= 4 * density.trace_stderr
    second = (density.weights * density.nodes**2).sum(axis=1) * 51
    stderr = second.std(ddof=1) / np.sqrt(30)
    assert abs(second.mean() - (eigenvalues**2).sum()) <= 4 * stderr
    # The extreme nodes converge first: after 12 steps they are near the extreme eigenvalues.
    assert density.support[1] == pytest.approx(eigenvalues[-1], rel=1e-3)
    assert density.support[0] == pytest.approx(eigenvalues[0], rel=1e-3)


def test_the_gauss_newton_density_is_non_negative():
    model = chain_model()
    X, y = spirals(80)
    density = hessian_density(model, (X, y), operator="ggn", n_runs=16, n_steps=54, seed=0)
    G = np.linalg.eigvalsh(dense_ggn(model, X, y))
    assert density.operator == "ggn"
    assert density.support[0] >= -F32_RTOL * G[-1]
    assert abs(density.trace - G.sum()) <= 4 * density.trace_stderr
    assert density.support[1] == pytest.approx(G[-1], rel=F32_RTOL * 10)


def test_the_same_seed_gives_the_same_density_and_it_saves(tmp_path, tanh_net):
    model, data, _ = tanh_net
    a = hessian_density(model, data, n_runs=3, n_steps=10, seed=4)
    b = hessian_density(model, data, n_runs=3, n_steps=10, seed=4)
    np.testing.assert_array_equal(a.nodes, b.nodes)
    back = HessianDensity.load(a.save(tmp_path / "d.npz"))
    np.testing.assert_array_equal(back.weights, a.weights)
    assert (back.n_params, back.operator, back.n_products, back.n_examples, back.precision) == (
        51,
        "hessian",
        30,
        200,
        "float32",
    )


def test_inconsistent_densities_are_refused():
    nodes = np.array([[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"Expected weights of shape \(1, 2\) but got \(1, 3\)"):
        HessianDensity(nodes, np.ones((1, 3)) / 3, 5)
    with pytest.raises(ValueError, match="Expected each run's weights to sum to 1"):
        HessianDensity(nodes, np.array([[0.5, 0.4]]), 5)
    with pytest.raises(ValueError, match="Expected weights to be >= 0"):
        HessianDensity(nodes, np.array([[1.5, -0.5]]), 5)
    with pytest.raises(ValueError, match="Expected operator to be one of"):
        HessianDensity(nodes, np.array([[0.5, 0.5]]), 5, operator="gauss")
    with pytest.raises(ValueError, match="Expected nodes to be finite"):
        HessianDensity(np.array([[0.0, np.nan]]), np.array([[0.5, 0.5]]), 5)
    with pytest.raises(ValueError, match=r"Expected sigma to be a finite number > 0 but got 0\.0"):
        HessianDensity(nodes, np.array([[0.5, 0.5]]), 5).density(np.zeros(3), 0.0)


def test_bad_density_arguments_are_named(tanh_net):
    model, data, _ = tanh_net
    with pytest.raises(ValueError, match="Expected n_runs to be a positive integer but got 0"):
        hessian_density(model, data, n_runs=0)
    with pytest.raises(ValueError, match="Expected n_steps to be a positive integer but got -1"):
        hessian_density(model, data, n_steps=-1)
    with pytest.raises(ValueError, match=r"Expected operator to be one of .* but got 'hess'"):
        hessian_density(model, data, operator="hess")
