"""Probes of a model, run once per preparation: what the evaluation strategies and the curvature
products may exploit.

- :func:`split_first_linear`: the model cut after its first layer that is linear in its weights.
  When the model is (or declares, through ``as_sequential()``) an ``nn.Sequential`` whose first
  layer with parameters is a ``Linear`` or convolution, that layer's output on a plane is

      f(x; W + a D0 + b D1) = f(x; W) + a f(x; D0) + b f(x; D1)

  so it can be evaluated 3 times for a whole job instead of once per point.
- :func:`vmap_works`: whether ``torch.vmap`` runs the model and its loss.
- :func:`activation_bytes`: the memory of one example's forward pass, the unit that chunks of
  points and data batches are cut from.
- :func:`has_conv`, :func:`has_batch_norm`: the layers that change how points are mapped.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..data import Inputs
from ..data.batches import as_call, n_examples

if TYPE_CHECKING:
    from .data import EvalData
    from .functional import FunctionalModel

__all__ = [
    "ELEMENTWISE",
    "SequentialSplit",
    "activation_bytes",
    "has_batch_norm",
    "has_conv",
    "split_first_linear",
    "vmap_works",
]

logger = logging.getLogger(__name__)

_LINEAR_FIRST_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class SequentialSplit:
    """A sequential model cut after its first layer with parameters."""

    prefix: nn.Module  # parameter-free leading modules (Flatten, ...)
    first: nn.Module  # the layer linear in its weights
    first_names: dict[str, str]  # local parameter name -> model parameter name
    rest: nn.Sequential
    rest_names: dict[str, str]
    # The rest as a chain of Linear layers (their model parameter names) and elementwise
    # activations (None), when it is only made of those; else None.
    chain: list[tuple[nn.Module, dict[str, str] | None]] | None = None


#: Parameter-free modules that act on each element alone (in eval mode).
ELEMENTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ReLU6,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Identity,
    nn.Dropout,
)


def _linear_chain(
    modules: list[nn.Module], full_names: dict[int, str]
) -> list[tuple[nn.Module, dict[str, str] | None]] | None:
    """``modules`` as a chain of Linear layers and elementwise activations, or None."""
    chain: list[tuple[nn.Module, dict[str, str] | None]] = []
    for m in modules:
        if isinstance(m, nn.Linear):
            chain.append((m, {n: full_names[id(p)] for n, p in m.named_parameters()}))
        elif isinstance(m, ELEMENTWISE):
            chain.append((m, None))
        else:
            return None
    return chain


def split_first_linear(model: nn.Module, sample: torch.Tensor) -> SequentialSplit | None:
    """Cut ``model`` after its first layer that is linear in its weights, if the model is (or
    declares an equivalent) ``nn.Sequential``; None otherwise."""
    seq: Any = model if isinstance(model, nn.Sequential) else None
    as_sequential = getattr(model, "as_sequential", None)
    if seq is None and callable(as_sequential):
        seq = as_sequential()
    if not isinstance(seq, nn.Sequential):
        return None
    modules = list(seq)
    k = next((i for i, m in enumerate(modules) if any(True for _ in m.parameters())), None)
    if k is None or not isinstance(modules[k], _LINEAR_FIRST_LAYERS):
        return None
    if any(any(True for _ in m.buffers()) for m in modules[: k + 1]):
        return None
    full_names = {id(p): n for n, p in model.named_parameters()}
    first, rest = modules[k], nn.Sequential(*modules[k + 1 :])
    first_names = {n: full_names.get(id(p), "") for n, p in first.named_parameters()}
    rest_names = {n: full_names.get(id(p), "") for n, p in rest.named_parameters()}
    if "" in first_names.values() or "" in rest_names.values():
        return None
    if len(first_names) + len(rest_names) != len(full_names):
        return None
    with torch.no_grad():
        if not torch.allclose(seq(sample), model(sample), rtol=1e-4, atol=1e-5):
            logger.info("as_sequential() does not match forward(); using the general evaluator")
            return None
    chain = _linear_chain(modules[k + 1 :], full_names) if isinstance(first, nn.Linear) else None
    return SequentialSplit(nn.Sequential(*modules[:k]), first, first_names, rest, rest_names, chain)


def vmap_works(model: FunctionalModel, data: EvalData) -> bool:
    """Whether ``torch.vmap`` runs the model and its loss on two points of two examples, with
    batching rules for every operation: where torch falls back to a loop over the points
    (it warns of "a performance drop", as for the CPU's fused attention kernels), one point at
    a time is as fast and says nothing."""
    flat = model.flat()
    W = torch.stack([flat, flat])
    x, y = data.head(2)
    try:
        with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.vmap(lambda p: model.loss(p, x, y))(model.params(W))
    except (RuntimeError, ValueError, NotImplementedError) as exc:
        logger.info("torch.vmap failed: %s", exc)
        return False
    fallback = [w for w in caught if "batching rule" in str(w.message)]
    if fallback:
        logger.info("torch.vmap loops over the points here: %s", fallback[0].message)
        return False
    return True


def has_conv(module: nn.Module) -> bool:
    """Whether ``module`` holds a convolution (vmap makes per-point convolutions grouped ones)."""
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules())


def has_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def activation_bytes(model: nn.Module, sample: Inputs) -> int:
    """Bytes of all intermediate outputs of ``model`` per example of ``sample`` (a batch of a
    few examples: a tensor, or named tensors passed as keyword arguments), rounded up."""
    sizes: list[int] = []

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        for t in _tensors(output):
            sizes.append(t.numel() * t.element_size())

    leaves = [m for m in model.modules() if not any(True for _ in m.children())] or [model]
    handles = [m.register_forward_hook(hook) for m in leaves]
    args, kwargs = as_call(sample)
    try:
        with torch.no_grad():
            out = model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    total = sum(sizes) + sum(t.numel() * t.element_size() for t in _tensors(out))
    n = max(n_examples(sample), 1)
    return -(-total // n)


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, Mapping):
        for item in obj.values():
            yield from _tensors(item)
