"""The faster forms of parameter-free layers give the same values bit for bit, and the first-layer
strategy built on them agrees with the per-point oracle for pooled convolutional models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from loss_landscape_anim.evaluate.strategies.faster_layers import WindowMax2d, faster_sequential
from oracle import check_against_oracle, random_plane


@pytest.mark.parametrize(
    ("pool", "shape"),
    [
        (nn.MaxPool2d(2), (3, 4, 28, 28)),
        (nn.MaxPool2d(2), (2, 3, 7, 9)),  # odd sizes: the last row and column are dropped
        (nn.MaxPool2d(3, stride=3), (2, 2, 10, 11)),
        (nn.MaxPool2d((2, 3)), (2, 2, 8, 9)),
        (nn.MaxPool2d(2), (5, 6, 6)),  # no batch dimension
    ],
)
def test_window_max_equals_max_pooling(pool: nn.MaxPool2d, shape: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g)
    x[..., 0, 0] = float("nan")  # propagated like max pooling does
    fast = faster_sequential(nn.Sequential(pool))
    assert isinstance(fast[0], WindowMax2d)
    torch.testing.assert_close(fast(x), pool(x), rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize(
    "pool",
    [
        nn.MaxPool2d(2, stride=1),
        nn.MaxPool2d(2, padding=1),
        nn.MaxPool2d(2, dilation=2),
        nn.MaxPool2d(2, ceil_mode=True),
        nn.MaxPool2d(2, return_indices=True),
    ],
)
def test_overlapping_or_padded_poolings_are_left_alone(pool: nn.MaxPool2d) -> None:
    fast = faster_sequential(nn.Sequential(nn.ReLU(), pool))
    assert fast[1] is pool and type(fast[0]) is nn.ReLU


def test_a_relu_before_a_window_max_moves_after_it_and_names_are_kept() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(48, 2)
    )
    fast = faster_sequential(model)
    assert [type(m) for m in fast] == [nn.Conv2d, WindowMax2d, nn.ReLU, nn.Flatten, nn.Linear]
    assert dict(fast.named_parameters()).keys() == dict(model.named_parameters()).keys()
    x = torch.randn(4, 1, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=0, atol=0)


def pooled_cnn(pool: nn.Module, second: nn.Module) -> nn.Module:
    torch.manual_seed(6)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3),
        nn.ReLU(),
        pool,
        second,
        nn.Flatten(),
        nn.LazyLinear(3),
    )


@pytest.mark.parametrize(
    ("pool", "second"),
    [
        (nn.MaxPool2d(2), nn.Conv2d(4, 5, 2)),  # window-major maps, rows and columns dropped
        (nn.MaxPool2d(3), nn.Tanh()),
        (nn.MaxPool2d(2, stride=1), nn.Conv2d(4, 5, 2)),  # not rewritten
        (nn.Identity(), nn.Conv2d(4, 5, 2)),  # no pooling
    ],
)
def test_pooled_convolutional_models_agree_with_the_oracle(
    pool: nn.Module, second: nn.Module
) -> None:
    model = pooled_cnn(pool, second)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(20, 2, 11, 11, generator=g)
    y = torch.randint(0, 3, (20,), generator=g)
    model(X[:1])  # materialise the lazy layer
    check_against_oracle(
        model, (X, y), random_plane(model, scale=0.5), resolution=4, strategy="first_layer"
    )
