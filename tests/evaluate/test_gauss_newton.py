"""Gauss-Newton and empirical Fisher products of ``CurvatureEvaluator(operator=...)`` against the
dense float64 ``J^T H_z J`` and ``(1/N) sum_i g_i g_i^T``, for models mapped with vmap, a model
with its own loss and a convolutional model computed one point at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hessian_oracle import (
    F32_RTOL,
    SmallConv,
    SquaredErrorChain,
    chain_model,
    dense_fisher,
    dense_ggn,
    dense_hessian,
    flat,
    images,
)
from loss_landscape_anim.evaluate import CurvatureEvaluator
from loss_landscape_anim.evaluate.gauss_newton import FisherProducts, GaussNewtonProducts
from oracle import Residual, spirals

CASES = {
    "chain": (chain_model, lambda: spirals(40)),
    "squared-error chain": (SquaredErrorChain, lambda: spirals(40)),
    "residual": (Residual, lambda: spirals(30)),
    "convolutional": (SmallConv, lambda: images(12)),
}
ORACLES = {"ggn": dense_ggn, "fisher": dense_fisher}


@pytest.mark.parametrize("operator", ["ggn", "fisher"])
@pytest.mark.parametrize("name", list(CASES))
def test_products_match_the_dense_matrix(name, operator):
    make, data = CASES[name]
    model = make()
    X, y = data()
    # Two data batches, so that their shares add up.
    whole = CurvatureEvaluator(model, (X, y), operator=operator)
    evaluator = CurvatureEvaluator(
        model, (X, y), operator=operator, memory_budget=(X.shape[0] // 2 + 1) * whole.per_example
    )
    assert evaluator.data.n_batches == 2
    expected_type = GaussNewtonProducts if operator == "ggn" else FisherProducts
    assert isinstance(evaluator.products, expected_type)
    rng = np.random.default_rng(0)
    W = flat(model) + 0.3 * rng.standard_normal((2, flat(model).size))
    V = rng.standard_normal((2, 3, W.shape[1]))
    evaluator.products.start(torch.as_tensor(W, dtype=torch.float32))
    out = evaluator.products.products(torch.as_tensor(V)).numpy()
    for k in range(2):
        M = ORACLES[operator](model, X, y, W[k])
        expected = V[k] @ M
        np.testing.assert_allclose(out[k], expected, atol=F32_RTOL * np.abs(expected).max())


def test_the_gauss_newton_matrix_is_positive_semidefinite_unlike_the_hessian():
    model = chain_model()
    X, y = spirals(60)
    w = flat(model) + 0.5 * np.random.default_rng(1).standard_normal(flat(model).size)
    W = torch.as_tensor(w[None], dtype=torch.float32)
    ggn = CurvatureEvaluator(model, (X, y), operator="ggn").dense_hessians(W)[0].numpy()
    values = np.linalg.eigvalsh(ggn)
    assert values[0] >= -F32_RTOL * values[-1]
    assert np.linalg.eigvalsh(dense_hessian(model, X, y, w))[0] < -F32_RTOL * values[-1]


def test_gauss_newton_is_the_hessian_for_a_linear_model_with_squared_error():
    # Outputs linear in the weights: the residual term vanishes, G = H exactly.
    model = SquaredErrorChain()
    model.net = torch.nn.Sequential(torch.nn.Linear(2, 3))
    X, y = spirals(30)
    W = torch.as_tensor(flat(model)[None], dtype=torch.float32)
    G = CurvatureEvaluator(model, (X, y), operator="ggn").dense_hessians(W)[0].numpy()
    H = dense_hessian(model, X, y)
    np.testing.assert_allclose(G, H, atol=F32_RTOL * np.abs(H).max())


def test_operator_choices_are_checked():
    X, y = spirals(20)
    with pytest.raises(ValueError, match=r"Expected operator to be one of .*'ggn'.* but got 'gn'"):
        CurvatureEvaluator(chain_model(), (X, y), operator="gn")
    with pytest.raises(ValueError, match="products='chain' computes Hessian products; operator="):
        CurvatureEvaluator(chain_model(), (X, y), operator="ggn", products="chain")
