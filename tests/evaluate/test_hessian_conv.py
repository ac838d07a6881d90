"""The written-out products of sequential convolutional networks (``products="conv"``) against
the float64 dense Hessian and the generic ``torch.func`` products: several points and vectors,
several data batches, smooth activations, overlapping poolings, strides, padding, dilation, a
loss of the model's own; which models they take."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hessian_oracle import F32_RTOL, SmallConv, dense_hessian, flat, images
from loss_landscape_anim import GenericModel, LeNet
from loss_landscape_anim.evaluate import CurvatureEvaluator
from loss_landscape_anim.evaluate.hessian_conv import ConvChainProducts, conv_chain


class SmoothConv(GenericModel):
    """Two convolutions (padding, stride, dilation, one without bias), tanh (curvature terms)
    before an overlapping max pooling, a squared-error loss of its own: 131 parameters."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.net = nn.Sequential(
            nn.Conv2d(1, 2, 3, padding=1, bias=False),
            nn.Tanh(),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(2, 3, 2, stride=1, dilation=2),
            nn.GELU(),
            nn.Flatten(),
            nn.Linear(3, 4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def as_sequential(self) -> nn.Sequential:
        return self.net

    def loss_fn(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ((y_pred - F.one_hot(y, 4).to(y_pred.dtype)) ** 2).mean()


CASES = {"relu and max pooling": (SmallConv, 7, 6), "smooth, own loss": (SmoothConv, 4, 8)}


@pytest.mark.parametrize("name", list(CASES))
def test_products_match_the_dense_hessian(name):
    make, classes, size = CASES[name]
    model = make()
    X, y = images(14, size=size, classes=classes)
    whole = CurvatureEvaluator(model, (X, y))
    evaluator = CurvatureEvaluator(model, (X, y), memory_budget=8 * whole.per_example)
    assert isinstance(evaluator.products, ConvChainProducts)
    assert evaluator.data.n_batches == 2
    rng = np.random.default_rng(0)
    W = flat(model) + 0.3 * rng.standard_normal((3, flat(model).size))
    V = rng.standard_normal((3, 4, W.shape[1]))
    evaluator.products.start(torch.as_tensor(W, dtype=torch.float32))
    out = evaluator.products.products(torch.as_tensor(V)).numpy()
    for k in range(3):
        expected = V[k] @ dense_hessian(model, X, y, W[k])
        np.testing.assert_allclose(out[k], expected, atol=F32_RTOL * np.abs(expected).max())
    evaluator.products.keep(torch.tensor([2, 0]))
    kept = evaluator.products.products(torch.as_tensor(V[[2, 0]])).numpy()
    np.testing.assert_allclose(kept, out[[2, 0]], rtol=0, atol=F32_RTOL * np.abs(out).max())


def test_lenet_products_match_the_generic_ones():
    torch.manual_seed(0)
    model = LeNet()
    X, y = images(24, size=32, classes=10, seed=1)
    conv = CurvatureEvaluator(model, (X, y))
    generic = CurvatureEvaluator(model, (X, y), products="functional")
    assert isinstance(conv.products, ConvChainProducts)
    rng = np.random.default_rng(1)
    W = torch.as_tensor(flat(model) + 0.05 * rng.standard_normal((2, flat(model).size)))
    V = torch.as_tensor(rng.standard_normal((2, 2, W.shape[1])))
    results = []
    for evaluator in (conv, generic):
        evaluator.products.start(W.float())
        results.append(evaluator.products.products(V).numpy())
    # Both in float32 over 61,706 parameters: agreement to float32 rounding of long sums.
    np.testing.assert_allclose(results[0], results[1], atol=F32_RTOL * np.abs(results[1]).max())


def test_lanczos_on_several_points_finds_the_dense_extremes():
    model = SmallConv()
    X, y = images(20)
    evaluator = CurvatureEvaluator(model, (X, y))
    assert evaluator.chunk_points(5) == 5  # the products share work across the points of a call
    W = flat(model) + 0.3 * np.random.default_rng(2).standard_normal((5, flat(model).size))
    tol = 1e-6
    found = evaluator.weight_extremes(W, method="lanczos", tol=tol, seed=0)
    for k in range(5):
        eigenvalues = np.linalg.eigvalsh(dense_hessian(model, X, y, W[k]))
        scale = np.abs(eigenvalues).max()
        assert abs(found.largest[k] - eigenvalues[-1]) <= (tol + F32_RTOL) * scale
        assert abs(found.smallest[k] - eigenvalues[0]) <= (tol + F32_RTOL) * scale


@pytest.mark.parametrize(
    "model",
    [
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 3)),
        nn.Sequential(nn.Conv2d(2, 2, 3, groups=2), nn.Flatten(), nn.Linear(32, 3)),
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 3)),
        nn.Sequential(nn.Flatten(), nn.Linear(36, 5), nn.ReLU(), nn.Linear(5, 3)),  # no conv
    ],
    ids=["batch norm", "grouped", "average pooling", "no convolution"],
)
def test_other_models_get_other_products(model):
    channels = 2 if isinstance(model[0], nn.Conv2d) and model[0].groups == 2 else 1
    X = torch.randn(6, channels, 6, 6)
    y = torch.randint(0, 3, (6,))
    assert conv_chain(model, X[:2]) is None
    assert not isinstance(CurvatureEvaluator(model, (X, y)).products, ConvChainProducts)
    with pytest.raises(ValueError, match="products='conv' needs a sequential network of Conv2d"):
        CurvatureEvaluator(model, (X, y), products="conv")
