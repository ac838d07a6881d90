"""The model as a pure function of its weights: ``loss(params, x, y)`` and ``outputs(params, x)``.

Weights are passed in (``torch.func.functional_call``), never written into a module, and nothing is
done in place, so the functions are safe under autograd (Hessian-vector products), ``torch.vmap``
and autocast. The module is a private copy in eval mode: BatchNorm uses its running statistics and
dropout is off.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call

from .._validate import check_model
from ..losses import LossFn, checked_loss, is_default_cross_entropy, loss_function
from ..params.layout import ParamLayout

__all__ = ["FunctionalModel", "autocast_on", "compute_dtype"]


class FunctionalModel:
    """A private eval-mode copy of ``model`` on ``device``, called with weights given per call.

    Attributes:
        module: the copy (its own parameters are never used by the calls below).
        layout: the flat-parameter layout of the model.
        loss_fn: the model's ``loss_fn`` or cross-entropy.
        default_cross_entropy: True when ``loss_fn`` is plain cross-entropy.
        dtype: the model's parameter dtype.
    """

    def __init__(self, model: nn.Module, device: torch.device):
        check_model(model)
        self.layout = ParamLayout.of(model)
        self.module = copy.deepcopy(model).to(device).eval()
        self.device = device
        self.dtype = next(self.module.parameters()).dtype
        self.loss_fn: LossFn = loss_function(self.module)
        self.default_cross_entropy = is_default_cross_entropy(self.loss_fn)

    def params(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named views of flat weights (..., P)."""
        return self.layout.unflatten(flat)

    def outputs(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The model's output on ``x`` with weights ``params`` (named tensors)."""
        return functional_call(self.module, params, (x,))

    def loss(
        self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """Mean loss on ``(x, y)`` with weights ``params``: a scalar, differentiable in them."""
        return self.loss_fn(self.outputs(params, x), y)

    def correct(
        self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """Number of examples of ``(x, y)`` whose argmax prediction is the label (a scalar
        tensor), with weights ``params``; for class logits (N, C) and integer labels (N,)."""
        return (self.outputs(params, x).argmax(dim=1) == y).sum()

    def is_classifier(self, x: torch.Tensor, y: torch.Tensor) -> bool:
        """Whether the model gives class logits (N, C) for integer labels (N,): accuracy
        applies."""
        if y.ndim != 1 or y.is_floating_point():
            return False
        with torch.no_grad():
            return self.module(x[:2]).ndim == 2

    def check(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Run the model and its loss on a few examples, with a clear error when they do not fit."""
        with torch.no_grad():
            checked_loss(self.loss_fn, self.module(x[:2]), y[:2])


def autocast_on(device_type: str) -> bool:
    """Whether autocast is enabled for ``device_type`` here."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 takes no device argument
        return device_type == "cuda" and torch.is_autocast_enabled()


def compute_dtype(device: torch.device, dtype: torch.dtype) -> torch.dtype:
    """The dtype a model of parameter dtype ``dtype`` computes its products in on ``device``:
    the autocast dtype when autocast is on and the model is float32, else ``dtype``."""
    if dtype == torch.float32 and autocast_on(device.type):
        return torch.get_autocast_dtype(device.type)
    return dtype
