"""The reference oracle of the curvature tests: the dense Hessian of the mean loss in float64 from
``torch.autograd.functional.hessian``, and small models (a few dozen parameters) of each kind the
Hessian-vector products handle."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from loss_landscape_anim import GenericModel

#: Agreement of float32 Hessian-vector products with the float64 oracle, relative to the largest
#: entry (or eigenvalue) of the Hessian: sums of a few hundred float32 products (eps 1.2e-7) of
#: terms of that scale, in another order than the oracle's.
F32_RTOL = 1e-5


def dense_hessian(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, weights: np.ndarray | None = None
) -> np.ndarray:
    """The (P, P) Hessian of the model's mean loss over (X, y) at ``weights`` (default: its own),
    in float64, in eval mode."""
    work = copy.deepcopy(model).double().eval()
    names = [n for n, _ in work.named_parameters()]
    shapes = [p.shape for _, p in work.named_parameters()]
    loss_fn = getattr(work, "loss_fn", F.cross_entropy)
    Xd = X.double() if X.is_floating_point() else X
    yd = y.double() if y.is_floating_point() else y
    if weights is None:
        w = torch.nn.utils.parameters_to_vector(work.parameters()).detach()
    else:
        w = torch.as_tensor(np.asarray(weights), dtype=torch.float64)

    def loss(flat: torch.Tensor) -> torch.Tensor:
        params, offset = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            size = int(np.prod(shape))
            params[name] = flat[offset : offset + size].reshape(shape)
            offset += size
        return loss_fn(functional_call(work, params, (Xd,)), yd)

    return torch.autograd.functional.hessian(loss, w).numpy()


def flat(model: nn.Module) -> np.ndarray:
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().double().numpy()


def chain_model(seed: int = 0) -> nn.Module:
    """Linear -> tanh -> Linear -> ReLU -> Linear: 54 parameters, a chain."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))


class SquaredErrorChain(GenericModel):
    """A chain with a loss of its own (squared error against one-hot targets)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.net = nn.Sequential(nn.Linear(2, 6), nn.GELU(), nn.Linear(6, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def as_sequential(self) -> nn.Sequential:
        return self.net

    def loss_fn(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((y_pred - F.one_hot(y, 3).to(y_pred.dtype)) ** 2).mean()


def _float64_function(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, weights: np.ndarray | None
):
    """(outputs of flat weights, loss of outputs, the weights) for a float64 copy of the model."""
    work = copy.deepcopy(model).double().eval()
    names = [n for n, _ in work.named_parameters()]
    shapes = [p.shape for _, p in work.named_parameters()]
    loss_fn = getattr(work, "loss_fn", F.cross_entropy)
    Xd = X.double() if X.is_floating_point() else X
    yd = y.double() if y.is_floating_point() else y
    if weights is None:
        w = torch.nn.utils.parameters_to_vector(work.parameters()).detach()
    else:
        w = torch.as_tensor(np.asarray(weights), dtype=torch.float64)

    def outputs(flat: torch.Tensor, x: torch.Tensor = Xd) -> torch.Tensor:
        params, offset = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            size = int(np.prod(shape))
            params[name] = flat[offset : offset + size].reshape(shape)
            offset += size
        return functional_call(work, params, (x,))

    return outputs, (lambda z, target=yd: loss_fn(z, target)), w, Xd, yd


def dense_ggn(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, weights: np.ndarray | None = None
) -> np.ndarray:
    """The generalised Gauss-Newton matrix ``J^T H_z J`` (P, P) in float64, written out: the
    Jacobian of all outputs in the weights and the loss Hessian in all outputs."""
    outputs, loss, w, _, _ = _float64_function(model, X, y, weights)
    z = outputs(w)
    J = torch.autograd.functional.jacobian(outputs, w).reshape(z.numel(), -1)
    Hz = torch.autograd.functional.hessian(lambda flat: loss(flat.reshape(z.shape)), z.reshape(-1))
    return (J.T @ Hz @ J).numpy()


def dense_fisher(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, weights: np.ndarray | None = None
) -> np.ndarray:
    """The empirical Fisher ``(1/N) sum_i g_i g_i^T`` (P, P) in float64, from a loop over the
    examples' gradients."""
    outputs, _, w, Xd, yd = _float64_function(model, X, y, weights)
    loss_fn = getattr(model, "loss_fn", F.cross_entropy)
    rows = []
    for i in range(Xd.shape[0]):
        flat = w.clone().requires_grad_(True)
        value = loss_fn(outputs(flat, Xd[i : i + 1]), yd[i : i + 1])
        rows.append(torch.autograd.grad(value, flat)[0])
    G = torch.stack(rows)
    return (G.T @ G / Xd.shape[0]).numpy()


class SmallConv(nn.Module):
    """Conv -> ReLU -> MaxPool -> Linear on 1 x 6 x 6 images: 77 parameters."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.layers = nn.Sequential(
            nn.Conv2d(1, 2, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(8, 7),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def as_sequential(self) -> nn.Sequential:
        return self.layers


def images(
    n: int, size: int = 6, classes: int = 7, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, size, size, generator=g), torch.randint(0, classes, (n,), generator=g)
