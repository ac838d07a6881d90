"""Curvature where a hard user broke it: regression losses (``F.mse_loss``, ``F.huber_loss``) that
forward-mode AD cannot take, a least-squares model whose smallest eigenvalues cluster near zero,
non-finite weights, and eigenvalues that did not converge (marked, never drawn as measured)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hessian_oracle import F32_RTOL, dense_hessian
from loss_landscape_anim import (
    GenericModel,
    curvature_along_path,
    curvature_grid,
    hessian_eigenvalues,
    hessian_trace,
    loss_landscape_anim,
    plot_curvature,
    train,
)
from oracle import random_plane


class Regression(GenericModel):
    """A small regression network with a loss of its own."""

    def __init__(self, loss=F.mse_loss, sequential: bool = True):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1))
        self.loss, self.sequential = loss, sequential

    def forward(self, x):
        return self.net(x)

    def as_sequential(self):
        return self.net if self.sequential else None

    def loss_fn(self, y_pred, y):
        return self.loss(y_pred, y)


def regression_data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 3, generator=g)
    return X, X[:, :1] * 0.5 - X[:, 1:2] + 0.1 * torch.randn(n, 1, generator=g)


@pytest.mark.parametrize(
    "loss", [F.mse_loss, F.huber_loss, F.smooth_l1_loss], ids=lambda f: f.__name__
)
@pytest.mark.parametrize("sequential", [True, False], ids=["chain", "functional"])
def test_regression_losses_get_their_curvature(loss, sequential):
    model = Regression(loss, sequential)
    X, y = regression_data()
    exact = np.linalg.eigvalsh(dense_hessian(model, X, y))
    scale = np.abs(exact).max()
    spectrum = hessian_eigenvalues(model, (X, y), k=1, seed=0, tol=1e-8)
    assert abs(spectrum.largest[0] - exact[-1]) <= 4 * F32_RTOL * scale
    assert abs(spectrum.smallest[0] - exact[0]) <= 4 * F32_RTOL * scale
    trace = hessian_trace(model, (X, y), n_samples=200, seed=0)
    assert abs(trace.estimate - exact.sum()) <= 5 * trace.stderr + 4 * F32_RTOL * scale
    plane = random_plane(model)
    grid = curvature_grid(model, (X, y), plane, resolution=3, progress=False, method="dense")
    assert np.isfinite(grid.lambda_max).all()
    centre = np.linalg.eigvalsh(dense_hessian(model, X, y, plane.point(grid.xs[1], grid.ys[1])))
    assert abs(grid.lambda_max[1, 1] - centre[-1]) <= 4 * F32_RTOL * scale


def test_hessian_directions_of_a_regression_model_after_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = regression_data()
    loss_landscape_anim(
        n_epochs=3,
        model=Regression(),
        datamodule=(X, y),
        reduction_method="hessian",
        resolution=4,
        progress=False,
        output_filename="r.gif",
    )
    assert (tmp_path / "r.gif").stat().st_size > 0


class LeastSquares(GenericModel):
    """A linear least-squares model whose features span four decades: the Hessian's eigenvalues
    span eight, and its smallest cluster near zero."""

    def __init__(self, features: int):
        super().__init__()
        self.linear = nn.Linear(features, 1, bias=False)

    def forward(self, x):
        return self.linear(x)

    def loss_fn(self, y_pred, y):
        return ((y_pred - y) ** 2).mean()


def test_the_smallest_eigenvalue_converges_relative_to_the_spectrum():
    g = torch.Generator().manual_seed(0)
    scales = torch.logspace(0, -4, 40, dtype=torch.float64)
    X = torch.randn(400, 40, generator=g, dtype=torch.float64) * scales
    y = X @ torch.randn(40, 1, generator=g, dtype=torch.float64)
    model = LeastSquares(40).double()
    exact = np.linalg.eigvalsh(dense_hessian(model, X, y))  # 2e-8 to 2.1
    spectrum = hessian_eigenvalues(model, (X, y), k=2, seed=0)
    scale = exact[-1]
    np.testing.assert_allclose(spectrum.largest, exact[::-1][:2], rtol=1e-6)
    # within tol (1e-4, the default) of the spectrum's scale, not of each tiny eigenvalue
    np.testing.assert_allclose(spectrum.smallest, exact[:2], atol=1e-4 * scale)
    assert spectrum.n_products < 400


def test_non_finite_weights_are_refused():
    model = Regression()
    with torch.no_grad():
        model.net[0].weight[0, 0] = float("nan")
    X, y = regression_data()
    for compute in (hessian_eigenvalues, hessian_trace):
        with pytest.raises(ValueError, match="Expected the model's weights to be finite but 1"):
            compute(model, (X, y))


def test_unconverged_eigenvalues_are_marked_and_left_out_of_the_pictures():
    model = Regression(sequential=False)
    X, y = regression_data()
    plane = random_plane(model)
    grid = curvature_grid(
        model, (X, y), plane, resolution=3, method="lanczos", max_iter=2, tol=1e-9, progress=False
    )
    assert grid.converged is not None and not grid.converged.any()
    _, ax = plot_curvature(grid)
    assert "9 points left blank" in " ".join(t.get_text() for t in ax.texts)
    (mesh,) = ax.collections
    assert np.ma.getmaskarray(mesh.get_array()).all()
    converged = curvature_grid(model, (X, y), plane, resolution=3, method="dense", progress=False)
    assert converged.converged.all()
    trajectory = train(model, (X, y), 2, seed=0, progress=False)
    path = curvature_along_path(
        model, (X, y), trajectory, method="lanczos", max_iter=2, tol=1e-9, progress=False
    )
    assert path.converged is not None and not path.converged.any()
