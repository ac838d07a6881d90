"""``align``: a randomly permuted copy of a trained MLP and of a small conv net (with BatchNorm and
pooling) computes the same function and aligns back to the reference exactly, by weight and by
activation matching; alignment never raises the line's barrier on the built-in examples (the
spirals MLP trained by two optimizers, or from two seeds); layers that cannot be permuted are
named."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from loss_landscape_anim import MLP, SpiralsDataModule, align, loss_along_line, train
from loss_landscape_anim.analysis.permutations import permutation_spec
from oracle import spirals
from tolerance import EPS32


def outputs(model: nn.Module, weights: np.ndarray, X: torch.Tensor) -> torch.Tensor:
    """The model's outputs with ``weights`` loaded into a copy; BatchNorm on the batch's own
    statistics (the running statistics are buffers, which permuting weights does not touch)."""
    copy_ = copy.deepcopy(model)
    vector_to_parameters(torch.as_tensor(weights, dtype=torch.float32), copy_.parameters())
    copy_.eval()
    for m in copy_.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train()
    with torch.no_grad():
        return copy_(X)


def random_permutation(model: nn.Module, weights: np.ndarray, seed: int) -> np.ndarray:
    spec = permutation_spec(model)
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(n) for n in spec.sizes]
    assert all((p != np.arange(len(p))).any() for p in perms)
    return spec.apply(weights, perms)


class SmallConvNet(nn.Module):
    """Conv -> BatchNorm -> ReLU -> max pool -> conv -> ReLU -> flatten -> Linear -> ReLU ->
    Linear, on 1 x 8 x 8 inputs; the flatten keeps 2 x 2 positions per channel."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 5, 3, padding=1)
        self.bn = nn.BatchNorm2d(5)
        self.conv2 = nn.Conv2d(5, 6, 3, padding=1)
        self.fc1 = nn.Linear(6 * 2 * 2, 7)
        self.fc2 = nn.Linear(7, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn(self.conv1(x))), 2)
        x = F.avg_pool2d(torch.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        return self.fc2(F.relu(self.fc1(x)))


@pytest.fixture(scope="module")
def trained_mlp():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MLP(2, 3, num_hidden_layers=2, hidden_dim=16, learning_rate=0.02)
    weights = train(model, SpiralsDataModule(), 80, seed=0, progress=False).final_params
    return model, weights.astype(np.float64)


@pytest.fixture(scope="module")
def trained_conv():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = SmallConvNet()
        X = torch.randn(96, 1, 8, 8)
        y = torch.randint(0, 3, (96,))
    weights = train(model, (X, y), 20, seed=0, progress=False).final_params
    return model, weights.astype(np.float64), X, y


@pytest.mark.parametrize("method", ["weight", "activation", "best"])
def test_a_permuted_mlp_computes_the_same_function_and_aligns_back_exactly(trained_mlp, method):
    model, reference = trained_mlp
    X, y = spirals()
    other = random_permutation(model, reference, seed=1)
    assert not np.array_equal(other, reference)
    out_ref, out_other = outputs(model, reference, X), outputs(model, other, X)
    # the same sums in another order: float32 rounding of sums of ~16 terms of the outputs' size
    bound = 4 * 16 * EPS32 * float(out_ref.abs().max() + 1)
    assert float((out_ref - out_other).abs().max()) <= bound
    data = None if method == "weight" else (X, y)
    aligned = align(model, reference, other, data=data, method=method)
    np.testing.assert_array_equal(aligned, reference)
    line = loss_along_line(model, (X, y), reference, aligned, n_points=5)
    assert line.barrier == 0.0 and np.ptp(line.loss) == 0.0


@pytest.mark.parametrize("method", ["weight", "activation"])
def test_a_permuted_conv_net_aligns_back_exactly(trained_conv, method):
    model, reference, X, y = trained_conv
    spec = permutation_spec(model)
    assert spec.sizes == (5, 6, 7)
    assert {(a.name, a.block) for a in spec.axes if a.group == 1 and a.axis == 1} == {
        ("fc1.weight", 4)
    }
    other = random_permutation(model, reference, seed=2)
    out_ref, out_other = outputs(model, reference, X), outputs(model, other, X)
    bound = 4 * 54 * EPS32 * float(out_ref.abs().max() + 1)
    assert float((out_ref - out_other).abs().max()) <= bound
    aligned = align(model, reference, other, data=None if method == "weight" else (X, y))
    np.testing.assert_array_equal(aligned, reference)


def test_align_does_not_change_the_model(trained_mlp):
    model, reference = trained_mlp
    before = parameters_to_vector(model.parameters()).detach().clone()
    align(model, reference, random_permutation(model, reference, 3), data=spirals(100))
    assert torch.equal(parameters_to_vector(model.parameters()), before)


@pytest.fixture(scope="module")
def built_in_pairs():
    """The default spirals MLP trained by two optimizers from the same initial weights, and from
    two seeds."""
    data = SpiralsDataModule()

    def mlp(seed: int) -> MLP:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return MLP(input_dim=2, num_classes=3)

    model = mlp(0)
    adam = train(model, data, 300, optimizer="adam", seed=0, progress=False).final_params
    sgd = train(model, data, 300, optimizer="sgd", learning_rate=0.5, seed=0, progress=False)
    other = train(mlp(1), data, 300, seed=0, progress=False).final_params
    return data, model, {"two optimizers": (adam, sgd.final_params), "two seeds": (adam, other)}


@pytest.mark.parametrize("pair", ["two optimizers", "two seeds"])
def test_alignment_never_raises_the_barrier_on_the_built_in_examples(built_in_pairs, pair):
    data, model, pairs = built_in_pairs
    a, b = pairs[pair]
    line = loss_along_line(model, data, a, b, n_points=41)
    aligned = align(model, a, b, data=data, method="best")
    after = loss_along_line(model, data, a, aligned, n_points=41)
    assert after.barrier <= line.barrier
    if pair == "two seeds":  # the units of two initialisations do not correspond: large gain
        assert after.barrier < line.barrier / 3
        for method in ("weight", "activation"):
            matched = align(model, a, b, data=None if method == "weight" else data, method=method)
            assert loss_along_line(model, data, a, matched, n_points=41).barrier < line.barrier / 3


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(2, 4)
        self.hidden = nn.Linear(4, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        return self.out(h + self.hidden(h))


def test_layers_that_cannot_be_permuted_are_named():
    w = np.zeros(1)
    with pytest.raises(ValueError, match=r"through the operation 'add': it combines several"):
        align(Residual(), w, w)
    norm = nn.Sequential(nn.Linear(2, 4), nn.LayerNorm(4), nn.Linear(4, 3))
    with pytest.raises(ValueError, match=r"through layer '1' \(LayerNorm\): only Linear, Conv2d"):
        align(norm, w, w)
    grouped = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Conv2d(4, 3, 1))
    with pytest.raises(ValueError, match=r"layer '0' \(Conv2d with groups=2\)"):
        align(grouped, w, w)
    unflattened = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(4, 3))
    with pytest.raises(ValueError, match=r"into layer '1' \(Linear\): its 4 inputs do not match"):
        align(unflattened, w, w)


def test_bad_arguments_are_refused(trained_mlp):
    model, reference = trained_mlp
    with pytest.raises(ValueError, match=r"Expected other to have \d+ entries"):
        align(model, reference, reference[:-1])
    with pytest.raises(ValueError, match="Expected data for method='activation'"):
        align(model, reference, reference, method="activation")
    with pytest.raises(ValueError, match="Expected method to be one of 'weight', 'activation'"):
        align(model, reference, reference, method="sinkhorn")
    with pytest.raises(TypeError, match=r"Expected model to be a torch\.nn\.Module"):
        align("mlp", reference, reference)
