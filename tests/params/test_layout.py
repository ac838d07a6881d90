"""Tests of ``ParamLayout``: the one mapping between flat parameter vectors and named tensors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parameters_to_vector

from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.params.layout import ParamLayout, flatten_params


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3), nn.ReLU())


def test_of_lists_names_and_shapes_in_parameters_order() -> None:
    layout = ParamLayout.of(small_net())
    assert layout.names == ("0.weight", "0.bias", "2.weight", "2.bias")
    assert layout.shapes == ((2, 1, 3, 3), (2,), (3, 8), (3,))
    assert layout.sizes == (18, 2, 24, 3)
    assert layout.n_params == 47
    assert layout.offsets() == [(0, 18), (18, 20), (20, 44), (44, 47)]


def test_flatten_matches_parameters_to_vector() -> None:
    model = small_net()
    flat = ParamLayout.of(model).flatten(model)
    assert flat.shape == (47,)
    assert not flat.requires_grad
    assert torch.equal(flat, parameters_to_vector(model.parameters()).detach())
    assert torch.equal(flatten_params(model), flat)


def test_flatten_is_a_copy() -> None:
    model = small_net()
    flat = ParamLayout.of(model).flatten(model)
    flat.zero_()
    assert model[0].weight.abs().sum() > 0


def test_unflatten_round_trips_exactly() -> None:
    model = small_net()
    layout = ParamLayout.of(model)
    named = layout.unflatten(layout.flatten(model))
    assert list(named) == list(layout.names)
    for name, param in model.named_parameters():
        assert named[name].shape == param.shape
        assert torch.equal(named[name], param.detach())
    again = torch.cat([named[n].reshape(-1) for n in layout.names])
    assert torch.equal(again, layout.flatten(model))


def test_batched_unflatten_keeps_leading_dimensions() -> None:
    layout = ParamLayout.of(small_net())
    flat = torch.randn(4, 5, layout.n_params, generator=torch.Generator().manual_seed(1))
    named = layout.unflatten(flat)
    for name, shape in zip(layout.names, layout.shapes, strict=True):
        assert named[name].shape == (4, 5, *shape)
    for i in range(4):
        for j in range(5):
            single = layout.unflatten(flat[i, j])
            for name in layout.names:
                assert torch.equal(named[name][i, j], single[name])


def test_unflatten_gives_views_into_the_flat_vector() -> None:
    layout = ParamLayout.of(small_net())
    flat = torch.zeros(layout.n_params)
    named = layout.unflatten(flat)
    named["2.weight"][1, 2] = 7.0
    assert flat[20 + 1 * 8 + 2] == 7.0


def test_unflatten_rejects_wrong_length() -> None:
    layout = ParamLayout.of(small_net())
    with pytest.raises(
        ValueError, match="Expected a flat parameter vector of length 47 but got 46"
    ):
        layout.unflatten(torch.zeros(46))
    with pytest.raises(ValueError, match="of length 47 but got 48"):
        layout.unflatten(torch.zeros(2, 48))


def test_model_without_parameters_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one parameter but ReLU has none"):
        ParamLayout.of(nn.ReLU())


def test_check_model_names_both_architectures() -> None:
    layout = ParamLayout.of(nn.Linear(2, 3))
    other = nn.Linear(2, 4)
    with pytest.raises(
        IncompatibleFileError,
        match=r"9 parameters in tensors \[weight\[3, 2\], bias\[3\]\] but got 12 in "
        r"\[weight\[4, 2\], bias\[4\]\]",
    ):
        layout.flatten(other)
    layout.check_model(nn.Linear(2, 3))  # same architecture: no error


def test_describe_truncates_long_layouts() -> None:
    layout = ParamLayout(tuple(f"p{k}" for k in range(6)), tuple((k + 1,) for k in range(6)))
    assert layout.describe() == "[p0[1], p1[2], p2[3], p3[4], ... (2 more)]"
    assert layout.describe(limit=6) == "[p0[1], p1[2], p2[3], p3[4], p4[5], p5[6]]"


def test_json_round_trip() -> None:
    layout = ParamLayout.of(small_net())
    data = json.loads(json.dumps(layout.to_json()))
    assert ParamLayout.from_json(data) == layout


shapes_strategy = st.lists(
    st.lists(st.integers(min_value=1, max_value=4), min_size=0, max_size=3).map(tuple),
    min_size=1,
    max_size=5,
)


@settings(max_examples=30, deadline=None)
@given(
    shapes=shapes_strategy, lead=st.lists(st.integers(1, 3), max_size=2), seed=st.integers(0, 99)
)
def test_flat_round_trip_property(
    shapes: list[tuple[int, ...]], lead: list[int], seed: int
) -> None:
    layout = ParamLayout(tuple(f"p{k}" for k in range(len(shapes))), tuple(shapes))
    assert layout.n_params == sum(math.prod(s) for s in shapes)
    flat = torch.randn(*lead, layout.n_params, generator=torch.Generator().manual_seed(seed))
    named = layout.unflatten(flat)
    for name, shape in zip(layout.names, layout.shapes, strict=True):
        assert named[name].shape == (*lead, *shape)
    rebuilt = torch.cat([named[n].reshape(*lead, -1) for n in layout.names], dim=-1)
    assert torch.equal(rebuilt, flat)


class WithScalar(nn.Module):
    """A model with a 0-d parameter (a learnable temperature)."""

    def __init__(self) -> None:
        super().__init__()
        self.temperature = nn.Parameter(torch.tensor(1.5))
        self.linear = nn.Linear(2, 2)


def test_scalar_parameter_round_trips() -> None:
    model = WithScalar()
    layout = ParamLayout.of(model)
    assert layout.shapes[0] == ()
    named = layout.unflatten(layout.flatten(model))
    assert named["temperature"].shape == ()
    assert named["temperature"].item() == 1.5
    batched = layout.unflatten(torch.stack([layout.flatten(model)] * 3))
    assert batched["temperature"].shape == (3,)


def test_a_model_with_lazy_parameters_is_refused_with_what_to_do() -> None:
    model = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(2), nn.LazyBatchNorm1d())
    with pytest.raises(
        ValueError,
        match=r"Expected model to have materialised parameters but Sequential has lazy ones "
        r"without a shape yet \(0\.weight, 0\.bias, 2\.weight, \.\.\. \(\d more\)\): run one "
        r"batch through it first, e\.g\. model\(x\)",
    ):
        ParamLayout.of(model)
    model(torch.randn(3, 5))  # the first batch gives every lazy module its shapes
    assert ParamLayout.of(model).shapes == ((4, 5), (4,), (2, 4), (2,), (2,), (2,))


def test_every_entry_point_refuses_a_lazy_model_with_the_same_message() -> None:
    from loss_landscape_anim import LossEvaluator, train

    X, y = torch.randn(8, 5), torch.randint(0, 2, (8,))
    for call in (
        lambda m: train(m, (X, y), 1, progress=False),
        lambda m: LossEvaluator(m, (X, y)),
    ):
        with pytest.raises(ValueError, match="lazy ones without a shape yet"):
            call(nn.Sequential(nn.LazyLinear(2)))
