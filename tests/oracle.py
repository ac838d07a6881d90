"""The reference oracle of the evaluation tests: a per-point loop that loads each weight vector into
a copy of the model and runs the data forward, and small models that exercise each strategy."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import vector_to_parameters

from loss_landscape_anim import GenericModel, LossGrid, Plane, SpiralsDataModule, compute_loss_grid
from loss_landscape_anim.models import MLP

#: Agreement with the oracle in float32: a few hundred additions of terms of similar size, each
#: rounded to float32 (eps 1.2e-7), in another order than the oracle's.
RTOL = 1e-5


def loss_at(model: nn.Module, weights: np.ndarray, X: torch.Tensor, y: torch.Tensor) -> float:
    """The mean loss over (X, y) of ``model`` with flat ``weights`` (a copy of the model)."""
    copy_ = copy.deepcopy(model).eval()
    dtype = next(copy_.parameters()).dtype
    vector_to_parameters(torch.as_tensor(weights, dtype=dtype), copy_.parameters())
    loss_fn = getattr(copy_, "loss_fn", F.cross_entropy)
    with torch.no_grad():
        return float(loss_fn(copy_(X), y))


def oracle_grid(model: nn.Module, X: torch.Tensor, y: torch.Tensor, plane: Plane, grid: LossGrid):
    return np.array([[loss_at(model, plane.point(x, yv), X, y) for x in grid.xs] for yv in grid.ys])


def spirals(n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    X, y = SpiralsDataModule().dataset.tensors
    return (X, y) if n is None else (X[:n], y[:n])


def random_plane(model: nn.Module, seed: int = 0, scale: float = 1.0) -> Plane:
    """A plane through the model's weights with unit random directions and a short fake path."""
    origin = torch.nn.utils.parameters_to_vector(model.parameters()).detach().double().numpy()
    g = np.random.default_rng(seed)
    D = g.normal(size=(2, origin.size))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    path = np.array([[-1.0, -0.5], [-0.4, -0.6], [0.0, 0.0]]) * scale
    return Plane(origin, D, path, np.zeros(3), None, "random")


def one_hidden_relu(hidden: int = 9) -> nn.Module:
    """``Linear -> ReLU -> Linear`` on 2-D inputs (every plane strategy applies)."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 3))


class Residual(nn.Module):
    """A custom module with no ``as_sequential``: evaluated by the general vmap path."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(2, 6)
        self.hidden = nn.Linear(6, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.inp(x))
        return self.out(h + torch.relu(self.hidden(h)))


def item_loss(y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy that calls ``.item()``, which ``torch.vmap`` cannot run."""
    scale = 1.0 + 0.0 * float(y_pred.detach().sum().item())
    return scale * F.cross_entropy(y_pred, y)


class ItemLossMLP(MLP):
    def loss_fn(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return item_loss(y_pred, y)


class ItemLossLinear(GenericModel):
    """A single linear layer (nothing after the split) with a loss vmap cannot run."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def as_sequential(self) -> nn.Sequential:
        return nn.Sequential(self.linear)

    def loss_fn(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return item_loss(y_pred, y)


def check_against_oracle(model, data, plane, *, resolution: int = 5, **options) -> LossGrid:
    grid = compute_loss_grid(model, data, plane, resolution=resolution, progress=False, **options)
    X, y = data if isinstance(data, tuple) else data.dataset.tensors
    expected = oracle_grid(model, X, y, plane, grid)
    assert grid.loss.shape == (resolution, resolution)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(grid.loss, expected, rtol=RTOL)
    return grid
