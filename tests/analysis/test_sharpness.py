"""``sharpness`` on a least-squares loss, exactly quadratic in the weights with a known Hessian:
worst-case L2 sharpness is rho^2 lambda_max / 2, average-case rho^2 trace / (2P) within its
standard error, worst-case Linf the best vertex of the box; adaptive sharpness is unchanged by
rescaling the layers of a ReLU network (standard sharpness is not)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from loss_landscape_anim import Sharpness, sharpness
from oracle import spirals
from tolerance import EPS64, sum_tolerance


class LeastSquares(nn.Module):
    """``0.5 * mean ||W x - y||^2``: the Hessian in vec(W) (row-major) is ``I kron X^T X / N``."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out, bias=False).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def loss_fn(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((pred - target) ** 2).sum(dim=1).mean()


@pytest.fixture(scope="module")
def quadratic():
    """The model at its minimum, the data and the Hessian (P, P)."""
    rng = np.random.default_rng(0)
    d_in, d_out, n = 5, 3, 40
    X = rng.standard_normal((n, d_in)) * np.array([3.0, 1.5, 1.0, 0.7, 0.4])
    Y = rng.standard_normal((n, d_out))
    model = LeastSquares(d_in, d_out)
    A = X.T @ X / n
    W = np.linalg.solve(X.T @ X, X.T @ Y).T  # the least-squares minimum
    with torch.no_grad():
        model.linear.weight.copy_(torch.as_tensor(W))
    H = np.kron(np.eye(d_out), A)
    return model, (torch.as_tensor(X), torch.as_tensor(Y)), H, W.reshape(-1)


def test_worst_case_l2_is_half_rho_squared_lambda_max(quadratic):
    model, data, H, _ = quadratic
    rho = 0.1
    found = sharpness(model, data, rho=rho, kind="standard", norm="l2", n_steps=60)
    expected = rho**2 * np.linalg.eigvalsh(H)[-1] / 2
    # The ascent is a power iteration on the sphere: after 60 steps the gap of this spectrum
    # (top two eigenvalues 9.2 and 2.3) leaves far less than 1e-8 of the value; the loss
    # difference itself is exact to float64 rounding of sums over the data.
    assert found.value == pytest.approx(expected, rel=1e-8)
    assert found.value <= expected + sum_tolerance(found.loss, 40 * 15)
    assert found.delta_norm == pytest.approx(rho, rel=1e-12)
    assert np.isnan(found.stderr) and found.worst_case and found.n_iterations == 60
    assert found.label == "worst-case standard l2, rho=0.1"


def test_adaptive_worst_case_uses_the_scaled_hessian(quadratic):
    model, data, H, w = quadratic
    rho = 0.05
    found = sharpness(model, data, rho=rho, kind="adaptive", norm="l2", n_steps=80)
    C = np.diag(np.abs(w))
    assert found.value == pytest.approx(rho**2 * np.linalg.eigvalsh(C @ H @ C)[-1] / 2, rel=1e-6)


def test_average_case_is_rho_squared_trace_over_2p(quadratic):
    model, data, H, _ = quadratic
    P = H.shape[0]
    rho = 0.3
    l2 = sharpness(model, data, rho=rho, kind="standard", worst_case=False, n_samples=400)
    assert not l2.worst_case and l2.n_iterations == 400 and l2.stderr > 0
    assert abs(l2.value - rho**2 * np.trace(H) / (2 * P)) <= 4 * l2.stderr
    # E ||delta||^2 = rho^2: the mean norm is close to rho (chi distribution with P = 15).
    assert l2.delta_norm == pytest.approx(rho, rel=0.05)
    # Uniform in the box: E u_i^2 = rho^2 / 3.
    box = sharpness(
        model, data, rho=rho, kind="standard", norm="linf", worst_case=False, n_samples=400
    )
    assert abs(box.value - rho**2 * np.trace(H) / 6) <= 4 * box.stderr


def test_worst_case_linf_ends_at_a_vertex_and_restarts_find_the_best():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 3)) * np.array([2.0, 1.0, 0.5])
    Y = rng.standard_normal((30, 2))
    model = LeastSquares(3, 2)
    with torch.no_grad():
        model.linear.weight.copy_(torch.as_tensor(np.linalg.solve(X.T @ X, X.T @ Y).T))
    H = np.kron(np.eye(2), X.T @ X / 30)
    rho = 0.2
    # A convex quadratic takes its maximum over the box at a vertex: try all 2^6.
    vertices = np.array(list(itertools.product([-1.0, 1.0], repeat=6)))
    at_vertices = np.einsum("kp,pq,kq->k", vertices, H, vertices) * rho**2 / 2
    data = (torch.as_tensor(X), torch.as_tensor(Y))
    found = [
        sharpness(model, data, rho=rho, kind="standard", norm="linf", seed=seed)
        for seed in range(8)
    ]
    tol = sum_tolerance(at_vertices.max(), 30 * 6)
    for f in found:
        # Sign steps end at a vertex that no single step improves: a local maximum, a lower
        # bound of the worst case.
        assert np.abs(at_vertices - f.value).min() <= tol
        assert f.delta_norm == pytest.approx(rho * np.sqrt(6), rel=1e-12)
    assert max(f.value for f in found) == pytest.approx(at_vertices.max(), abs=tol)


def relu_net(scale: float) -> nn.Module:
    """Linear -> ReLU -> Linear in float64, its first layer scaled by ``scale`` and its second
    layer's weight by ``1 / scale``: the same function for every scale > 0."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 3)).double()
    with torch.no_grad():
        net[0].weight.mul_(scale)
        net[0].bias.mul_(scale)
        net[2].weight.div_(scale)
    return net


@pytest.mark.parametrize(
    ("norm", "worst_case"), [("l2", True), ("linf", True), ("l2", False), ("linf", False)]
)
def test_adaptive_sharpness_is_invariant_to_rescaling_relu_layers(norm, worst_case):
    X, y = spirals(100)
    data = (X.double(), y)
    values = {}
    for kind in ("adaptive", "standard"):
        for scale in (1.0, 4.0):
            found = sharpness(
                relu_net(scale), data, rho=0.1, kind=kind, norm=norm, worst_case=worst_case
            )
            values[kind, scale] = found.value
    # The same perturbed functions, step by step: equal up to float64 rounding of the loss.
    loss_scale = 2.0
    assert values["adaptive", 4.0] == pytest.approx(
        values["adaptive", 1.0], abs=sum_tolerance(loss_scale, 10_000, EPS64)
    )
    assert abs(values["standard", 4.0] - values["standard", 1.0]) > 0.05 * abs(
        values["standard", 1.0]
    )


def test_sharpness_saves_and_loads(tmp_path, quadratic):
    model, data, _, _ = quadratic
    for worst in (True, False):
        found = sharpness(model, data, rho=0.1, worst_case=worst, n_steps=5, n_samples=10)
        back = Sharpness.load(found.save(tmp_path / f"s{worst}.npz"))
        for name in ("value", "rho", "kind", "norm", "worst_case", "loss", "delta_norm"):
            assert getattr(back, name) == getattr(found, name)
        assert back.perturbed_loss == found.loss + found.value
        assert np.isnan(back.stderr) == worst


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rho": 0.0}, ValueError, "Expected rho to be a finite number > 0 but got 0.0"),
        ({"rho": 0.1, "kind": "relative"}, ValueError, r"Expected kind to be one of .*adaptive"),
        ({"rho": 0.1, "norm": "l1"}, ValueError, r"Expected norm to be one of .*linf"),
        ({"rho": 0.1, "worst_case": "yes"}, TypeError, "Expected worst_case to be True or False"),
        ({"rho": 0.1, "n_steps": 0}, ValueError, "Expected n_steps to be a positive integer"),
        (
            {"rho": 0.1, "worst_case": False, "n_samples": 1},
            ValueError,
            "Expected n_samples to be at least 2 but got 1",
        ),
    ],
)
def test_bad_sharpness_arguments_are_named(quadratic, kwargs, error, match):
    model, data, _, _ = quadratic
    with pytest.raises(error, match=match):
        sharpness(model, data, **kwargs)
