"""``hessian_eigenvalues`` and ``hessian_trace`` against the float64 dense Hessian; their results
saved and loaded; argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hessian_oracle import F32_RTOL, SquaredErrorChain, chain_model, dense_hessian, flat
from loss_landscape_anim import HessianSpectrum, HessianTrace, hessian_eigenvalues, hessian_trace
from oracle import Residual, spirals

TOL = 1e-4  # the eigsh tolerance asked for: relative accuracy of the eigenvalues


@pytest.fixture(scope="module")
def setup():
    model = chain_model()
    X, y = spirals(80)
    return model, (X, y), dense_hessian(model, X, y)


def test_extreme_eigenvalues_match_the_dense_hessian(setup):
    model, data, H = setup
    spectrum = hessian_eigenvalues(model, data, k=3, seed=0)
    eigenvalues = np.linalg.eigvalsh(H)
    scale = np.abs(eigenvalues).max()
    # ARPACK's tolerance is relative to each eigenvalue; the float32 products add their rounding.
    bound = TOL + F32_RTOL
    np.testing.assert_allclose(spectrum.largest, eigenvalues[::-1][:3], atol=bound * scale)
    np.testing.assert_allclose(spectrum.smallest, eigenvalues[:3], atol=bound * scale)
    assert spectrum.largest[0] >= spectrum.largest[1] >= spectrum.largest[2]
    assert spectrum.smallest[0] <= spectrum.smallest[1] <= spectrum.smallest[2]
    assert spectrum.smallest[0] < 0 < spectrum.largest[0]
    assert spectrum.n_products > 0
    assert spectrum.n_examples == 80 and spectrum.precision == "float32"
    assert spectrum.largest_vectors is None and spectrum.smallest_vectors is None


def test_eigenvectors_satisfy_the_eigen_equation(setup):
    model, data, H = setup
    spectrum = hessian_eigenvalues(model, data, k=2, seed=3, return_vectors=True)
    scale = np.abs(np.linalg.eigvalsh(H)).max()
    for values, vectors in (
        (spectrum.largest, spectrum.largest_vectors),
        (spectrum.smallest, spectrum.smallest_vectors),
    ):
        assert vectors is not None and vectors.shape == (2, H.shape[0])
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-9)
        for value, v in zip(values, vectors, strict=True):
            residual = np.linalg.norm(H @ v - value * v)
            assert residual <= 10 * (TOL + F32_RTOL) * scale


def test_the_same_seed_gives_the_same_numbers(setup):
    model, data, _ = setup
    a = hessian_eigenvalues(model, data, k=2, seed=7, return_vectors=True)
    b = hessian_eigenvalues(model, data, k=2, seed=7, return_vectors=True)
    np.testing.assert_array_equal(a.largest, b.largest)
    np.testing.assert_array_equal(a.smallest_vectors, b.smallest_vectors)
    assert a.n_products == b.n_products


def test_at_given_params_and_on_a_model_that_is_not_a_chain():
    model = Residual()
    X, y = spirals(60)
    w = flat(model) + np.random.default_rng(0).normal(scale=0.5, size=flat(model).size)
    before = [p.detach().clone() for p in model.parameters()]
    spectrum = hessian_eigenvalues(model, (X, y), params=torch.as_tensor(w), seed=0)
    eigenvalues = np.linalg.eigvalsh(dense_hessian(model, X, y, w))
    scale = np.abs(eigenvalues).max()
    assert abs(spectrum.largest[0] - eigenvalues[-1]) <= (TOL + F32_RTOL) * scale
    assert abs(spectrum.smallest[0] - eigenvalues[0]) <= (TOL + F32_RTOL) * scale
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q) and p.requires_grad


def test_the_trace_is_within_four_standard_errors(setup):
    model, data, H = setup
    trace = hessian_trace(model, data, n_samples=200, seed=0)
    assert trace.n_samples == 200 and trace.n_examples == 80
    assert trace.stderr > 0
    assert abs(trace.estimate - np.trace(H)) <= 4 * trace.stderr
    again = hessian_trace(model, data, n_samples=200, seed=0)
    assert again.estimate == trace.estimate


def test_the_trace_of_a_model_with_its_own_loss():
    model = SquaredErrorChain()
    X, y = spirals(60)
    trace = hessian_trace(model, (X, y), n_samples=100, seed=1)
    assert abs(trace.estimate - np.trace(dense_hessian(model, X, y))) <= 4 * trace.stderr


def test_results_save_and_load(tmp_path, setup):
    model, data, _ = setup
    spectrum = hessian_eigenvalues(model, data, k=2, seed=0, return_vectors=True)
    back = HessianSpectrum.load(spectrum.save(tmp_path / "s.npz"))
    np.testing.assert_array_equal(back.largest, spectrum.largest)
    np.testing.assert_array_equal(back.smallest_vectors, spectrum.smallest_vectors)
    assert (back.n_products, back.n_examples, back.precision, back.k) == (
        spectrum.n_products,
        80,
        "float32",
        2,
    )
    trace = hessian_trace(model, data, n_samples=10, seed=0)
    assert HessianTrace.load(trace.save(tmp_path / "t.npz")) == trace


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"k": 0}, "Expected k to be a positive integer but got 0"),
        ({"k": 54}, r"Expected k to be below the number of parameters \(54\) but got 54"),
        ({"tol": -1.0}, "Expected tol to be a finite number > 0 but got -1.0"),
        ({"params": np.zeros(3)}, r"Expected params to have 54 entries .* but got 3"),
        ({"params": np.full(54, np.nan)}, "Expected params to be finite"),
        ({"max_iter": 0}, "Expected max_iter to be a positive integer but got 0"),
    ],
)
def test_bad_arguments_are_named(setup, kwargs, match):
    model, data, _ = setup
    with pytest.raises(ValueError, match=match):
        hessian_eigenvalues(model, data, **kwargs)


def test_bad_trace_arguments_and_models(setup):
    model, data, _ = setup
    with pytest.raises(ValueError, match="Expected n_samples to be at least 2 but got 1"):
        hessian_trace(model, data, n_samples=1)
    with pytest.raises(TypeError, match=r"Expected model to be a torch\.nn\.Module but got str"):
        hessian_eigenvalues("mlp", data)
