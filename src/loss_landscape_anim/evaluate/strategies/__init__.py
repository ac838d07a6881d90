"""Evaluation strategies: how one chunk of points is evaluated on one data batch. One strategy per
module, all behind :class:`~.base.Strategy`; :func:`make_strategy` chooses once."""

from __future__ import annotations

import logging

import torch

from ..data import EvalData
from ..functional import FunctionalModel
from .base import Strategy
from .first_layer import FirstLayer
from .linear_chain import LinearChain
from .per_point import PerPoint
from .relu_regions import ReluRegions, is_one_hidden_relu
from .split import SequentialSplit
from .vmapped import Vmapped

__all__ = ["STRATEGIES", "Strategy", "make_strategy", "vmap_works"]

logger = logging.getLogger(__name__)

#: The strategies, fastest first where several apply.
STRATEGIES = ("relu_regions", "linear_chain", "first_layer", "vmap", "per_point")


def make_strategy(
    name: str,
    model: FunctionalModel,
    data: EvalData,
    *,
    plane: bool,
    split: SequentialSplit | None,
    vectorized: bool,
    cache_bytes: int,
) -> Strategy:
    """The strategy ``name``, or for ``"auto"`` the fastest that applies. ``plane`` says whether
    the points lie on a plane; ``split`` is the model cut after its first layer (None when it
    cannot be cut). For arbitrary weight vectors, the plane strategies give way to the general
    one (``"vmap"`` when ``vectorized``, else ``"per_point"``)."""
    general = Vmapped if vectorized else PerPoint
    if name == "per_point":
        return PerPoint(model, data)
    if name == "vmap":
        if not vmap_works(model, data):
            raise ValueError("strategy='vmap' was asked for but torch.vmap cannot run this model")
        return Vmapped(model, data)
    if not plane:
        return general(model, data)
    if name == "auto":
        if split is not None and is_one_hidden_relu(split):
            return ReluRegions(model, data, split, vectorized=vectorized, cache_bytes=cache_bytes)
        if split is not None and split.chain is not None:
            return LinearChain(model, data, split, vectorized=vectorized, cache_bytes=cache_bytes)
        if split is not None:
            return FirstLayer(model, data, split, vectorized=vectorized, cache_bytes=cache_bytes)
        return general(model, data)
    if split is None:
        raise ValueError(
            f"strategy={name!r} needs an nn.Sequential model (or one whose as_sequential() "
            "returns one) whose first layer with parameters is Linear or a convolution; use "
            "'auto', 'vmap' or 'per_point'"
        )
    if name == "first_layer":
        return FirstLayer(model, data, split, vectorized=vectorized, cache_bytes=cache_bytes)
    if name == "relu_regions":
        if not is_one_hidden_relu(split):
            raise ValueError(
                "strategy='relu_regions' needs a Linear -> ReLU -> Linear model; use "
                "'linear_chain', 'first_layer' or 'auto'"
            )
        return ReluRegions(model, data, split, vectorized=vectorized, cache_bytes=cache_bytes)
    if split.chain is None:
        raise ValueError(
            "strategy='linear_chain' needs a model made of Linear layers and elementwise "
            "activations only; use 'first_layer' or 'auto'"
        )
    return LinearChain(model, data, split, vectorized=vectorized, cache_bytes=cache_bytes)


def vmap_works(model: FunctionalModel, data: EvalData) -> bool:
    """Whether ``torch.vmap`` runs the model and its loss on two points of two examples."""
    flat = torch.cat([p.detach().reshape(-1) for p in model.module.parameters()])
    W = torch.stack([flat, flat])
    x, y = data.head(2)
    try:
        with torch.no_grad():
            torch.vmap(lambda p: model.loss(p, x, y))(model.params(W))
    except (RuntimeError, ValueError, NotImplementedError) as exc:
        logger.info("torch.vmap failed: %s", exc)
        return False
    return True
