"""``connect`` and ``loss_along_curve``: one training step of the bends against the gradient computed
by hand (the point loaded into a copy of the model), the ends fixed, the untrained curve on the
straight line, reproducibility from the seed, no change to the caller's model or the global RNG,
the curve's losses against direct evaluation (with BatchNorm statistics recomputed at each point),
errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from loss_landscape_anim import (
    MLP,
    Curve,
    LossEvaluator,
    SpiralsDataModule,
    connect,
    loss_along_curve,
    loss_along_line,
    train,
)
from loss_landscape_anim.results.curve import curve_coefficients
from oracle import RTOL, loss_at, spirals
from tolerance import EPS32, sum_tolerance


def flat(model: nn.Module) -> np.ndarray:
    return parameters_to_vector(model.parameters()).detach().double().numpy()


def small_mlp(seed: int) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MLP(2, 3, hidden_dim=12, learning_rate=0.02)


@pytest.fixture(scope="module")
def two_solutions():
    """A small MLP trained on spirals from two initialisations."""
    data = SpiralsDataModule()
    ends = [train(small_mlp(s), data, 60, seed=0, progress=False).final_params for s in (1, 2)]
    return small_mlp(1), data, ends[0].astype(np.float64), ends[1].astype(np.float64)


def test_one_step_of_sgd_moves_the_bend_by_the_gradient_computed_by_hand(two_solutions):
    model, _, a, b = two_solutions
    X, y = spirals()
    lr = 0.05
    curve = connect(model, (X, y), a, b, epochs=1, lr=lr, optimizer="sgd", seed=3, progress=False)
    # the t connect drew: after the epoch's permutation, one draw from the same generator
    generator = torch.Generator().manual_seed(3)
    torch.randperm(len(X), generator=generator)
    t = torch.rand(1, generator=generator, dtype=torch.float64).numpy()
    c = curve_coefficients("bezier", 1, t)[0]
    bend0 = (a + b) / 2
    point = c[0] * a + c[1] * bend0 + c[2] * b
    copy_ = copy.deepcopy(model)
    vector_to_parameters(torch.as_tensor(point, dtype=torch.float32), copy_.parameters())
    loss = F.cross_entropy(copy_(X), y)
    loss.backward()
    grad = np.concatenate([p.grad.double().numpy().ravel() for p in copy_.parameters()])
    expected = bend0 - lr * c[1] * grad  # the first step of momentum SGD is a plain step
    np.testing.assert_allclose(curve.history[0, 0], bend0.astype(np.float32), rtol=0, atol=0)
    scale = float(np.abs(bend0).max())
    np.testing.assert_allclose(curve.bends[0], expected, rtol=0, atol=20 * EPS32 * scale)
    assert curve.train_loss.shape == (1,)
    assert curve.train_loss[0] == pytest.approx(float(loss.detach()), rel=RTOL)


def test_training_lowers_the_barrier_and_keeps_the_ends(two_solutions):
    model, data, a, b = two_solutions
    before = parameters_to_vector(model.parameters()).detach().clone()
    rng_state = torch.get_rng_state()
    curve = connect(model, data, a, b, epochs=150, lr=0.02, labels=("one", "two"), progress=False)
    assert torch.equal(parameters_to_vector(model.parameters()), before)
    assert torch.equal(torch.get_rng_state(), rng_state)
    np.testing.assert_array_equal(curve.start, a)
    np.testing.assert_array_equal(curve.end, b)
    assert curve.labels == ("one", "two") and curve.kind == "bezier"
    assert curve.train_loss.shape == (150,) and np.isfinite(curve.train_loss).all()
    assert curve.history_steps[0] == 0 and curve.history_steps[-1] == 150
    line = loss_along_line(model, data, a, b, n_points=21)
    along = loss_along_curve(model, data, curve, n_points=21)
    assert line.barrier > 0.1  # two initialisations: a ridge between them on the line
    assert along.barrier < line.barrier / 3
    again = connect(model, data, a, b, epochs=150, lr=0.02, labels=("one", "two"), progress=False)
    np.testing.assert_array_equal(again.history, curve.history)


@pytest.mark.parametrize("kind", ["bezier", "polychain"])
def test_the_untrained_curve_is_the_straight_line(two_solutions, kind):
    model, data, a, b = two_solutions
    curve = connect(
        model, data, a, b, curve=kind, n_bends=3, epochs=2, record_every=1, progress=False
    )
    assert curve.history.shape == (3, 3, a.size) and curve.history_steps.tolist() == [0, 1, 2]
    first = curve.at_row(0)
    ts = np.linspace(0, 1, 7)
    expected = a + ts[:, None] * (b - a)
    scale = float(np.abs(a).max() + np.abs(b).max())
    np.testing.assert_allclose(
        first.points(ts), expected, rtol=0, atol=sum_tolerance(scale, 5, EPS32)
    )


def test_loss_along_curve_matches_direct_evaluation(two_solutions):
    model, data, a, b = two_solutions
    X, y = spirals()
    curve = connect(model, data, a, b, epochs=20, progress=False)
    along = loss_along_curve(model, (X, y), curve, n_points=5, row=3)
    np.testing.assert_array_equal(along.alphas, [0, 0.25, 0.5, 0.75, 1])
    for k, t in enumerate(along.alphas):
        weights = curve.points(np.array([t]), row=3)[0]
        assert along.loss[k] == pytest.approx(loss_at(model, weights, X, y), rel=RTOL)
        copy_ = copy.deepcopy(model)
        vector_to_parameters(torch.as_tensor(weights, dtype=torch.float32), copy_.parameters())
        with torch.no_grad():
            accuracy = float((copy_(X).argmax(1) == y).double().mean())
        assert along.accuracy[k] == pytest.approx(accuracy, abs=1e-12)
    assert along.labels == curve.labels and along.n_examples == len(X)
    evaluator = LossEvaluator(model, (X, y))
    shared = loss_along_curve(curve=curve, n_points=5, row=3, evaluator=evaluator, accuracy=False)
    np.testing.assert_array_equal(shared.loss, along.loss)
    assert np.isnan(shared.accuracy).all()


def bn_net() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


def recomputed_loss(model: nn.Module, weights: np.ndarray, X, y) -> tuple[float, float]:
    """Loss and accuracy of ``weights`` with BatchNorm statistics estimated at those weights."""
    copy_ = copy.deepcopy(model)
    vector_to_parameters(torch.as_tensor(weights, dtype=torch.float32), copy_.parameters())
    for m in copy_.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.reset_running_stats()
            m.momentum = None
    copy_.train()
    with torch.no_grad():
        copy_(X)
        out = copy_.eval()(X)
    return float(F.cross_entropy(out, y)), float((out.argmax(1) == y).double().mean())


def test_batch_norm_statistics_are_recomputed_at_each_point_of_the_curve():
    X, y = spirals(400)  # one batch under 1,024 examples: the oracle's single pass
    model = bn_net()
    a = train(model, (X, y), 40, seed=0, progress=False).final_params.astype(np.float64)
    other = bn_net()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(5)))
    b = train(other, (X, y), 40, seed=1, progress=False).final_params.astype(np.float64)
    curve = connect(model, (X, y), a, b, epochs=30, progress=False)
    along = loss_along_curve(model, (X, y), curve, n_points=4)
    for k, t in enumerate(along.alphas):
        loss, accuracy = recomputed_loss(model, curve.point(t), X, y)
        assert along.loss[k] == pytest.approx(loss, rel=RTOL)
        assert along.accuracy[k] == pytest.approx(accuracy, abs=1e-12)
    running = loss_along_curve(model, (X, y), curve, n_points=4, bn="eval")
    assert not np.allclose(running.loss, along.loss, rtol=0.01)


def test_bad_arguments_are_refused(two_solutions):
    model, _, a, b = two_solutions
    X, y = spirals(50)
    with pytest.raises(ValueError, match="Expected curve to be one of 'bezier', 'polychain'"):
        connect(model, (X, y), a, b, curve="spline", progress=False)
    with pytest.raises(ValueError, match="Expected n_bends to be a positive integer but got 0"):
        connect(model, (X, y), a, b, n_bends=0, progress=False)
    with pytest.raises(ValueError, match="Expected start and end to differ"):
        connect(model, (X, y), a, a, progress=False)
    with pytest.raises(ValueError, match=r"Expected end to have \d+ entries"):
        connect(model, (X, y), a, b[:-1], progress=False)
    with pytest.raises(ValueError, match="Expected optimizer to be one of 'adam', 'sgd'"):
        connect(model, (X, y), a, b, optimizer="lbfgs", progress=False)
    with pytest.raises(ValueError, match="Expected seed to be an integer"):
        connect(model, (X, y), a, b, seed=None, progress=False)
    curve = Curve(a, b, ((a + b) / 2 + 0.1)[None])
    with pytest.raises(ValueError, match="Expected bn to be one of 'recompute', 'eval'"):
        loss_along_curve(model, (X, y), curve, bn="train")
    with pytest.raises(TypeError, match="Expected curve to be a Curve but got ndarray"):
        loss_along_curve(model, (X, y), a)
    with pytest.raises(ValueError, match=r"Expected a curve of 21 weights .* but the curve has 75"):
        loss_along_curve(MLP(2, 3, hidden_dim=3), (X, y), curve)
    evaluator = LossEvaluator(model, (X, y))
    with pytest.raises(ValueError, match="Expected either evaluator= or the model, data and"):
        loss_along_curve(curve=curve, evaluator=evaluator, n_examples=10)
    with pytest.raises(ValueError, match="evaluator= with model, data"):
        loss_along_curve(model, (X, y), curve, evaluator=evaluator)
