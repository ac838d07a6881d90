"""The hidden units of a network and how permuting them moves its weights.

Permuting the hidden units of a layer (the rows of its weight and bias, the matching BatchNorm
parameters, and the columns of the next layer's weight) gives another weight vector that computes
the same function. :func:`permutation_spec` reads which parameter axes each permutation moves from
the network's graph (``torch.fx``): a chain of ``Linear`` / ``Conv2d`` layers, with BatchNorm,
elementwise activations, dropout, pooling and flattening between them. The output units are never
permuted. Anything else (a residual connection, a LayerNorm, an attention layer) is refused with an
error naming the first layer that cannot be permuted.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..params.layout import ParamLayout

__all__ = ["Axis", "PermutationSpec", "permutation_spec"]

_WEIGHT_LAYERS = (nn.Linear, nn.Conv2d)
_ELEMENTWISE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.Hardtanh,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
)
_POOLING_MODULES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_ELEMENTWISE_FUNCTIONS = {
    torch.relu,
    F.relu,
    F.relu6,
    F.leaky_relu,
    F.elu,
    F.gelu,
    F.silu,
    torch.tanh,
    torch.sigmoid,
    F.softplus,
    F.dropout,
}
_POOLING_FUNCTIONS = {F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d}
_ELEMENTWISE_METHODS = {"relu", "tanh", "sigmoid", "contiguous"}
_FLATTEN_METHODS = {"flatten", "view", "reshape"}
_SCALAR_METHODS = {"size", "dim"}


@dataclass(frozen=True)
class Axis:
    """One axis of one parameter that a permutation of hidden units moves.

    ``block`` > 1 when the axis holds the units' channels flattened with their spatial positions
    (a ``Linear`` after a convolution): the axis is then ``units x block``, channel-major.
    """

    name: str
    axis: int
    group: int
    block: int = 1


@dataclass(frozen=True)
class PermutationSpec:
    """The permutable groups of hidden units of a network.

    Attributes:
        layout: the network's flat-parameter layout.
        sizes: units in each group (one group per hidden layer).
        axes: the parameter axes each group moves.
        consumers: per group, the module whose input holds the group's activations (the next
            ``Linear`` or ``Conv2d``).
    """

    layout: ParamLayout
    sizes: tuple[int, ...]
    axes: tuple[Axis, ...]
    consumers: tuple[str, ...]

    def axes_of(self, group: int) -> list[Axis]:
        return [a for a in self.axes if a.group == group]

    def named(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Named views (float64) of a flat weight vector (P,)."""
        return {
            name: flat[a:b].reshape(shape)
            for name, shape, (a, b) in zip(
                self.layout.names, self.layout.shapes, self.layout.offsets(), strict=True
            )
        }

    def flat(self, named: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate(
            [np.asarray(named[n], dtype=np.float64).ravel() for n in self.layout.names]
        )

    def permute(
        self, flat: np.ndarray, perms: list[np.ndarray], skip: int | None = None
    ) -> dict[str, np.ndarray]:
        """Named weights of ``flat`` with group ``g``'s units reordered by ``perms[g]`` (unit
        ``i`` becomes the old unit ``perms[g][i]``), every group but ``skip``."""
        named = {k: v.copy() for k, v in self.named(flat).items()}
        for a in self.axes:
            if a.group != skip:
                named[a.name] = take_units(named[a.name], a, perms[a.group])
        return named

    def apply(self, flat: np.ndarray, perms: list[np.ndarray]) -> np.ndarray:
        """The flat weight vector (P,) of ``flat`` with every group's units reordered."""
        return self.flat(self.permute(flat, perms))


def take_units(array: np.ndarray, axis: Axis, perm: np.ndarray) -> np.ndarray:
    """``array`` with the units along ``axis`` reordered by ``perm``."""
    moved = np.moveaxis(array, axis.axis, 0)
    shape = moved.shape
    units = moved.reshape(len(perm), axis.block, *shape[1:])[perm]
    return np.moveaxis(units.reshape(shape), 0, axis.axis)


def units_matrix(array: np.ndarray, axis: Axis, n_units: int) -> np.ndarray:
    """(units, everything else) view of ``array`` along ``axis``, to compare units."""
    return np.moveaxis(array, axis.axis, 0).reshape(n_units, -1)


@dataclass
class _Walk:
    """The state of the walk along the graph: the group of the current tensor's units, whether
    they still have spatial positions, and whether those were flattened into features."""

    params: set[str]
    sizes: list[int]
    axes: list[Axis]
    consumers: list[str]
    called: set[str] = field(default_factory=set)
    group: int | None = None
    spatial: bool = False
    flattened: bool = False


def permutation_spec(model: nn.Module) -> PermutationSpec:
    """The permutable hidden units of ``model`` (see the module's docstring); ``ValueError``
    naming the first layer that cannot be permuted, or why the graph cannot be read."""
    import torch.fx

    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # tracing runs the user's forward: any error can come out
        raise ValueError(
            f"Cannot read the layers of {type(model).__name__} to permute its hidden units: "
            f"torch.fx could not trace its forward ({type(exc).__name__}: {exc})"
        ) from None
    walk = _Walk({n for n, _ in model.named_parameters()}, [], [], [])
    scalars: set[Any] = set()
    current = None
    for node in graph.nodes:
        if node.op == "placeholder":
            if current is not None:
                raise ValueError(f"Cannot permute {type(model).__name__}: it takes several inputs")
            current = node
            continue
        if node.op == "output":
            if node.args[0] is not current:
                raise ValueError(
                    f"Cannot permute {type(model).__name__}: its output is not one tensor of the "
                    "chain of layers"
                )
            break
        if node.op == "get_attr":
            raise ValueError(
                f"Cannot permute the hidden units of {type(model).__name__}: it uses "
                f"{_describe(node, model)}; only the parameters of Linear, Conv2d and BatchNorm "
                "layers can be permuted"
            )
        if _is_scalar(node, scalars):
            scalars.add(node)
            continue
        inputs = [a for a in node.all_input_nodes if a not in scalars]
        if inputs != [current]:
            raise ValueError(
                f"Cannot permute the hidden units through {_describe(node, model)}: it combines "
                "several tensors (a residual connection?); only chains of layers can be permuted"
            )
        _step(node, model, walk)
        current = node
    return _finish(model, walk)


def _is_scalar(node: Any, scalars: set[Any]) -> bool:
    """Whether ``node`` computes a size (``x.size(0)``, ``x.shape[0]``), not a tensor."""
    if node.op == "call_method" and node.target in _SCALAR_METHODS:
        return True
    if node.op == "call_function" and node.target is getattr:
        return node.args[1] == "shape"
    return (
        node.op == "call_function" and node.target is operator.getitem and node.args[0] in scalars
    )


def _step(node: Any, model: nn.Module, walk: _Walk) -> None:
    """Account for one operation of the chain."""
    if node.op == "call_module":
        module = model.get_submodule(node.target)
        if node.target in walk.called and any(p.numel() for p in module.parameters()):
            raise ValueError(
                f"Cannot permute the hidden units through {_describe(node, model)}: it is "
                "called twice, so its weights would be permuted two ways"
            )
        walk.called.add(node.target)
        if isinstance(module, _WEIGHT_LAYERS):
            return _weight_layer(node.target, module, walk)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return _batch_norm(node.target, module, walk)
        if isinstance(module, _ELEMENTWISE_MODULES):
            return None
        if isinstance(module, _POOLING_MODULES) and not walk.flattened:
            return None
        if isinstance(module, nn.Flatten) and module.start_dim == 1:
            walk.flattened = walk.flattened or walk.spatial
            return None
    elif node.op == "call_function":
        if node.target in _ELEMENTWISE_FUNCTIONS:
            return None
        if node.target in _POOLING_FUNCTIONS and not walk.flattened:
            return None
        if node.target is torch.flatten:
            walk.flattened = walk.flattened or walk.spatial
            return None
    elif node.op == "call_method":
        if node.target in _ELEMENTWISE_METHODS:
            return None
        if node.target in _FLATTEN_METHODS:
            walk.flattened = walk.flattened or walk.spatial
            return None
    raise ValueError(
        f"Cannot permute the hidden units through {_describe(node, model)}: only Linear, Conv2d, "
        "BatchNorm, elementwise activations, dropout, pooling and flattening can be permuted"
    )


def _weight_layer(name: str, module: nn.Linear | nn.Conv2d, walk: _Walk) -> None:
    conv = isinstance(module, nn.Conv2d)
    if isinstance(module, nn.Conv2d) and module.groups != 1:
        raise ValueError(
            f"Cannot permute the hidden units through layer {name!r} (Conv2d with groups="
            f"{module.groups}): only ungrouped convolutions can be permuted"
        )
    if isinstance(module, nn.Conv2d):
        fan_in, fan_out = module.in_channels, module.out_channels
    else:
        fan_in, fan_out = module.in_features, module.out_features
    if walk.group is not None:
        units = walk.sizes[walk.group]
        block = fan_in // units if walk.flattened else 1
        fits = (walk.spatial == conv or walk.flattened) and units * block == fan_in
        if not fits or (conv and walk.flattened):
            raise ValueError(
                f"Cannot permute the hidden units into layer {name!r} ({type(module).__name__}): "
                f"its {fan_in} inputs do not match the {units} units before it"
            )
        walk.axes.append(Axis(f"{name}.weight", 1, walk.group, block))
        walk.consumers.append(name)
    group = len(walk.sizes)
    walk.sizes.append(fan_out)
    for suffix in ("weight", "bias"):
        if f"{name}.{suffix}" in walk.params:
            walk.axes.append(Axis(f"{name}.{suffix}", 0, group))
    walk.group, walk.spatial, walk.flattened = group, conv, False


def _batch_norm(name: str, module: nn.modules.batchnorm._BatchNorm, walk: _Walk) -> None:
    if walk.group is None or walk.flattened or module.num_features != walk.sizes[walk.group]:
        raise ValueError(
            f"Cannot permute the hidden units through layer {name!r} "
            f"({type(module).__name__}): it does not normalise the units of the layer before it"
        )
    for suffix in ("weight", "bias"):
        if f"{name}.{suffix}" in walk.params:
            walk.axes.append(Axis(f"{name}.{suffix}", 0, walk.group))


def _finish(model: nn.Module, walk: _Walk) -> PermutationSpec:
    """The spec without the output layer's group (the network's outputs keep their order)."""
    if walk.group is None:
        raise ValueError(f"Cannot permute {type(model).__name__}: it has no Linear or Conv2d layer")
    last = walk.group
    axes = tuple(a for a in walk.axes if a.group != last)
    return PermutationSpec(
        ParamLayout.of(model), tuple(walk.sizes[:last]), axes, tuple(walk.consumers)
    )


def _describe(node: Any, model: nn.Module) -> str:
    if node.op == "call_module":
        module = model.get_submodule(node.target)
        return f"layer {node.target!r} ({type(module).__name__})"
    if node.op == "get_attr":
        return f"the tensor {node.target!r} used directly"
    name = getattr(node.target, "__name__", str(node.target))
    return f"the operation {name!r}"
