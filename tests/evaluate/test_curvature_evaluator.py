"""Hessian-vector products, dense Hessians and the batched Lanczos iteration of
``CurvatureEvaluator`` against the float64 dense Hessian, for each way products are computed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hessian_oracle import F32_RTOL, SquaredErrorChain, chain_model, dense_hessian, flat
from loss_landscape_anim.evaluate import CurvatureEvaluator
from loss_landscape_anim.evaluate.extremes import DENSE_MAX_PARAMS, resolve_method
from loss_landscape_anim.evaluate.hessian_chain import ChainProducts
from loss_landscape_anim.evaluate.hessian_products import FunctionalProducts
from oracle import Residual, spirals

MODELS = {
    "chain": (chain_model, ("chain", "functional")),
    "squared-error chain": (SquaredErrorChain, ("chain", "functional")),
    "residual": (Residual, ("functional",)),
}


def points_near(model: torch.nn.Module, n: int, scale: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(5)
    w = flat(model)
    return w + scale * rng.standard_normal((n, w.size))


@pytest.mark.parametrize(
    ("name", "products"), [(n, p) for n, (_, ps) in MODELS.items() for p in ps]
)
def test_dense_hessians_match_the_oracle(name, products):
    model = MODELS[name][0]()
    X, y = spirals(60)
    evaluator = CurvatureEvaluator(model, (X, y), products=products)
    expected_type = ChainProducts if products == "chain" else FunctionalProducts
    assert isinstance(evaluator.products, expected_type)
    W = points_near(model, 2)
    H = evaluator.dense_hessians(torch.as_tensor(W, dtype=torch.float32)).numpy()
    for k in range(2):
        reference = dense_hessian(model, X, y, W[k])
        scale = np.abs(reference).max()
        np.testing.assert_allclose(H[k], reference, atol=F32_RTOL * scale)


@pytest.mark.parametrize("products", ["chain", "functional"])
def test_several_data_batches_sum_to_the_whole(products):
    model = SquaredErrorChain()
    X, y = spirals(60)
    whole = CurvatureEvaluator(model, (X, y), products=products)
    # A small memory budget cuts the data into batches of 25, 25 and 10 examples.
    budget = 25 * whole.per_example
    batched = CurvatureEvaluator(model, (X, y), products=products, memory_budget=budget)
    assert whole.data.n_batches == 1 and batched.data.n_batches == 3
    W = torch.as_tensor(points_near(model, 2), dtype=torch.float32)
    V = torch.as_tensor(np.random.default_rng(1).standard_normal((2, 1, W.shape[1])))
    results = []
    for evaluator in (whole, batched):
        evaluator.products.start(W)
        results.append(evaluator.products.products(V).numpy())
    np.testing.assert_allclose(results[1], results[0], atol=F32_RTOL * np.abs(results[0]).max())


def test_products_of_several_vectors_at_several_points():
    model = chain_model()
    X, y = spirals(50)
    evaluator = CurvatureEvaluator(model, (X, y))
    W = points_near(model, 4)
    V = np.random.default_rng(0).standard_normal((4, 3, W.shape[1]))
    evaluator.products.start(torch.as_tensor(W, dtype=torch.float32))
    out = evaluator.products.products(torch.as_tensor(V)).numpy()
    for k in range(4):
        reference = dense_hessian(model, X, y, W[k])
        expected = V[k] @ reference
        np.testing.assert_allclose(out[k], expected, atol=F32_RTOL * np.abs(expected).max())
    evaluator.products.keep(torch.tensor([2, 0]))
    kept = evaluator.products.products(torch.as_tensor(V[[2, 0]])).numpy()
    np.testing.assert_allclose(kept, out[[2, 0]], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("products", ["chain", "functional"])
def test_batched_lanczos_finds_the_extreme_eigenvalues(products):
    model = chain_model()
    X, y = spirals(60)
    evaluator = CurvatureEvaluator(model, (X, y), products=products, chunk_size=3)
    W = points_near(model, 7)
    tol = 1e-6
    found = evaluator.weight_extremes(W, method="lanczos", tol=tol, seed=0)
    assert found.method == "lanczos"
    assert 0 < found.n_products <= 7 * evaluator.n_params
    for k in range(7):
        eigenvalues = np.linalg.eigvalsh(dense_hessian(model, X, y, W[k]))
        scale = np.abs(eigenvalues).max()
        # The residual bound tol * scale, plus the float32 rounding of the products.
        assert abs(found.largest[k] - eigenvalues[-1]) <= (tol + F32_RTOL) * scale
        assert abs(found.smallest[k] - eigenvalues[0]) <= (tol + F32_RTOL) * scale


def test_dense_and_lanczos_agree_and_auto_picks_dense_for_small_models():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    X, y = spirals(60)
    evaluator = CurvatureEvaluator(model, (X, y))
    assert evaluator.n_params == 27 <= DENSE_MAX_PARAMS
    assert resolve_method("auto", CurvatureEvaluator(chain_model(), (X, y)).n_params) == "lanczos"
    points = points_near(model, 5)
    assert resolve_method("auto", evaluator.n_params) == "dense"
    dense = evaluator.weight_extremes(points, method="auto")
    lanczos = evaluator.weight_extremes(points, method="lanczos", tol=1e-7, seed=1)
    assert dense.method == "dense"
    assert dense.n_products == 5 * evaluator.n_params
    scale = np.abs(dense.largest).max()
    np.testing.assert_allclose(lanczos.largest, dense.largest, atol=2 * F32_RTOL * scale)
    np.testing.assert_allclose(lanczos.smallest, dense.smallest, atol=2 * F32_RTOL * scale)


def test_lanczos_that_stops_early_says_so(caplog):
    model = chain_model()
    X, y = spirals(60)
    evaluator = CurvatureEvaluator(model, (X, y))
    points = points_near(model, 2)
    with caplog.at_level("WARNING"):
        found = evaluator.weight_extremes(points, method="lanczos", tol=1e-12, max_steps=3, seed=0)
    assert found.n_products == 2 * 3
    assert not found.converged.any()
    assert "2 of 2 points stopped after 3 Lanczos steps" in caplog.text


def test_bad_choices_are_named():
    X, y = spirals(20)
    with pytest.raises(ValueError, match="Expected products to be one of 'auto', 'chain'"):
        CurvatureEvaluator(chain_model(), (X, y), products="fast")
    with pytest.raises(ValueError, match="products='chain' needs a chain of Linear layers"):
        CurvatureEvaluator(Residual(), (X, y), products="chain")
    evaluator = CurvatureEvaluator(chain_model(), (X, y))
    with pytest.raises(ValueError, match="Expected method to be one of 'auto', 'dense', 'lanczos'"):
        evaluator.weight_extremes(points_near(chain_model(), 1), method="qr")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_products_match_the_cpu():
    model = chain_model()
    X, y = spirals(60)
    W = torch.as_tensor(points_near(model, 3), dtype=torch.float32)
    for products in ("chain", "functional"):
        cpu = CurvatureEvaluator(model, (X, y), products=products).dense_hessians(W)
        gpu = CurvatureEvaluator(model, (X, y), products=products, device="cuda")
        on_gpu = gpu.dense_hessians(W.cuda()).cpu()
        scale = cpu.abs().max().item()
        np.testing.assert_allclose(on_gpu.numpy(), cpu.numpy(), atol=F32_RTOL * scale)
        found = gpu.weight_extremes(W.numpy(), method="lanczos", tol=1e-6, seed=0)
        eigenvalues = torch.linalg.eigvalsh(cpu)
        np.testing.assert_allclose(found.largest, eigenvalues[:, -1], atol=2e-5 * scale)
