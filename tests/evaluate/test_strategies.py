"""Every evaluation strategy against the per-point oracle, chosen through the public
``strategy=`` argument; the automatic choice; autocast on every strategy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from loss_landscape_anim import LeNet, LossEvaluator, compute_loss_grid
from loss_landscape_anim.evaluate import STRATEGIES
from oracle import (
    RTOL,
    ItemLossLinear,
    ItemLossMLP,
    Residual,
    check_against_oracle,
    one_hidden_relu,
    oracle_grid,
    random_plane,
    spirals,
)


def mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(2, 7), nn.Tanh(), nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3))


def lenet_and_data() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(3)
    g = torch.Generator().manual_seed(0)
    data = (torch.randn(6, 1, 32, 32, generator=g), torch.randint(0, 10, (6,), generator=g))
    return LeNet(), data


#: Which strategies apply to which model: (model, data, strategies that must work).
CASES = {
    "one-hidden-relu": (one_hidden_relu, lambda: spirals(200), STRATEGIES),
    "mlp-chain": (mlp, lambda: spirals(200), tuple(s for s in STRATEGIES if s != "relu_regions")),
    "residual": (Residual, lambda: spirals(200), ("vmap", "per_point")),
    "lenet": (LeNet, None, ("first_layer", "vmap", "per_point")),
}


def case(name: str) -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor], tuple[str, ...]]:
    if name == "lenet":
        model, data = lenet_and_data()
        return model, data, CASES[name][2]
    make_model, make_data, strategies = CASES[name]
    torch.manual_seed(2)
    return make_model(), make_data(), strategies


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_strategy_agrees_with_the_oracle(name: str, strategy: str) -> None:
    model, data, works = case(name)
    plane = random_plane(model, scale=0.5)
    if strategy not in works:
        with pytest.raises(ValueError, match=f"strategy='{strategy}' needs"):
            compute_loss_grid(model, data, plane, resolution=3, strategy=strategy, progress=False)
        return
    check_against_oracle(model, data, plane, resolution=4, strategy=strategy)


@pytest.mark.parametrize("strategy", ["auto", *STRATEGIES])
def test_float64_models_agree_with_the_oracle_to_float64_rounding(strategy: str) -> None:
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3)).double()
    X, y = spirals(40)
    plane = random_plane(model)
    grid = compute_loss_grid(
        model, (X.double(), y), plane, resolution=3, strategy=strategy, progress=False
    )
    expected = oracle_grid(model, X.double(), y, plane, grid)
    np.testing.assert_allclose(grid.loss, expected, rtol=1e3 * np.finfo(np.float64).eps)
    assert grid.precision == "float64"


def test_a_loss_vmap_cannot_run_is_evaluated_point_by_point() -> None:
    torch.manual_seed(4)
    model = ItemLossMLP(2, 3, hidden_dim=5)
    data = spirals(100)
    plane = random_plane(model)
    check_against_oracle(model, data, plane, resolution=4)  # auto
    check_against_oracle(model, data, plane, resolution=3, strategy="first_layer")
    with pytest.raises(ValueError, match=r"torch\.vmap cannot run this model"):
        LossEvaluator(model, data, strategy="vmap")


def test_a_single_linear_layer_with_a_loss_vmap_cannot_run() -> None:
    torch.manual_seed(5)
    model = ItemLossLinear()
    check_against_oracle(model, spirals(50), random_plane(model), resolution=3)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_arbitrary_weights_use_a_general_strategy(strategy: str) -> None:
    model = one_hidden_relu()
    X, y = spirals(80)
    plane = random_plane(model)
    weights = np.stack([plane.point(0.1, -0.2), plane.point(-0.3, 0.05)])
    evaluator = LossEvaluator(model, (X, y), strategy=strategy)
    from_weights = evaluator.weight_losses(weights)
    from_plane = evaluator.plane_losses(
        plane.origin, plane.directions, np.array([[0.1, -0.2], [-0.3, 0.05]])
    )
    np.testing.assert_allclose(from_weights, from_plane, rtol=RTOL)


def test_chunk_size_follows_the_memory_budget() -> None:
    model = mlp()
    assert LossEvaluator(model, spirals(30), memory_budget=1).chunk_points(16) == 1
    assert LossEvaluator(model, spirals(30)).chunk_points(16) == 16
    assert LossEvaluator(model, spirals(30), chunk_size=5).chunk_points(16) == 5
    assert LossEvaluator(model, spirals(30), chunk_size=50).chunk_points(16) == 16


def test_unknown_strategy_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"Expected strategy to be one of 'auto', 'relu_regions'"):
        LossEvaluator(mlp(), spirals(10), strategy="fast")


# --- autocast ------------------------------------------------------------------------------------

#: bfloat16 keeps 8 bits of mantissa (eps 2^-8); a loss through three products and a log-sum-exp
#: accumulates a few of those roundings relative to the logits' scale.
BF16_RTOL = 8 * 2.0**-8


@pytest.mark.parametrize(
    ("name", "strategy"),
    [
        (name, strategy)
        for name in ("one-hidden-relu", "mlp-chain", "lenet")
        for strategy in CASES[name][2]
    ],
)
def test_every_strategy_runs_under_autocast(name: str, strategy: str) -> None:
    model, data, _ = case(name)
    plane = random_plane(model, scale=0.5)
    exact = compute_loss_grid(model, data, plane, resolution=3, strategy=strategy, progress=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reduced = compute_loss_grid(
            model, data, plane, resolution=3, strategy=strategy, progress=False
        )
    assert reduced.precision == "bfloat16" and exact.precision == "float32"
    assert np.isfinite(reduced.loss).all()
    np.testing.assert_allclose(reduced.loss, exact.loss, rtol=BF16_RTOL)
    assert not np.array_equal(reduced.loss, exact.loss)  # it did compute in reduced precision
