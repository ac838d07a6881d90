"""The model as a pure function of its weights: ``loss(params, x, y)`` and ``outputs(params, x)``.

Weights are passed in (``torch.func.functional_call``), never written into a module, and nothing is
done in place, so the functions are safe under autograd (Hessian-vector products), ``torch.vmap``
and autocast. The module is a private copy in eval mode: BatchNorm uses its running statistics and
dropout is off. The weights passed are those of the layout, the parameters that were trainable
(see :meth:`~loss_landscape_anim.params.layout.ParamLayout.of`); frozen parameters keep the
copy's own values. Inputs are a tensor or named tensors (keyword arguments); outputs are the
model's predictions, the ``logits`` of a Hugging Face ``ModelOutput``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call

from .._validate import check_model
from ..data import Inputs
from ..data.batches import as_call, take
from ..losses import Loss, checked_loss, loss_for, loss_function, predictions
from ..params.layout import ParamLayout

__all__ = ["FunctionalModel", "autocast_on", "compute_dtype"]


class FunctionalModel:
    """A private eval-mode copy of ``model`` on ``device``, called with weights given per call.

    Attributes:
        module: the copy (its own parameters are used only where the layout leaves them out:
            frozen ones).
        layout: the flat-parameter layout of the points (the trainable parameters).
        loss_fn: the loss the model is measured by (a :class:`~loss_landscape_anim.losses.Loss`:
            decided by :meth:`check` from a batch, see :func:`~loss_landscape_anim.losses.loss_for`).
        default_cross_entropy: True when ``loss_fn`` is plain cross-entropy over examples.
        dtype: the model's parameter dtype.
    """

    def __init__(self, model: nn.Module, device: torch.device):
        check_model(model)
        self.layout = ParamLayout.of(model)
        self.module = copy.deepcopy(model).to(device).eval()
        self.device = device
        self.dtype = next(self.module.parameters()).dtype
        self.loss_fn: Loss = Loss(loss_function(self.module))

    @property
    def default_cross_entropy(self) -> bool:
        return self.loss_fn.default_cross_entropy

    @property
    def covers_all(self) -> bool:
        """Whether the points hold every parameter (no frozen ones left to the module)."""
        return self.layout.n_params == sum(p.numel() for p in self.module.parameters())

    def params(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named views of flat weights (..., P)."""
        return self.layout.unflatten(flat)

    def flat(self) -> torch.Tensor:
        """The module's own weights as a flat vector (P,) of the layout."""
        return self.layout.flatten(self.module)

    def outputs(self, params: dict[str, torch.Tensor], x: Inputs) -> torch.Tensor:
        """The model's predictions on ``x`` with weights ``params`` (named tensors)."""
        args, kwargs = as_call(x)
        return predictions(functional_call(self.module, params, args, kwargs))

    def forward(self, x: Inputs) -> torch.Tensor:
        """The predictions of the module with its own weights."""
        args, kwargs = as_call(x)
        return predictions(self.module(*args, **kwargs))

    def loss(self, params: dict[str, torch.Tensor], x: Inputs, y: torch.Tensor) -> torch.Tensor:
        """Mean loss on ``(x, y)`` with weights ``params``: a scalar, differentiable in them."""
        return self.loss_fn(self.outputs(params, x), y)

    def correct(self, params: dict[str, torch.Tensor], x: Inputs, y: torch.Tensor) -> torch.Tensor:
        """Number of right predictions on ``(x, y)`` with weights ``params`` (a scalar tensor):
        examples whose argmax prediction is the label (class logits (N, C) and integer labels
        (N,)), or label tokens for a token loss."""
        return self.loss_fn.correct(self.outputs(params, x), y)

    def is_classifier(self, x: Inputs, y: torch.Tensor) -> bool:
        """Whether accuracy applies: class logits (N, C) for integer labels (N,), or a token
        loss."""
        if self.loss_fn.tokens:
            return True
        if y.ndim != 1 or y.is_floating_point():
            return False
        with torch.no_grad():
            return self.forward(take(x, slice(0, 2))).ndim == 2

    def check(self, x: Inputs, y: torch.Tensor) -> None:
        """Decide the loss from the model's predictions on a few examples of ``(x, y)`` and run
        it on them, with a clear error when they do not fit."""
        x2, y2 = take(x, slice(0, 2)), y[:2]
        with torch.no_grad():
            out = self.forward(x2)
            self.loss_fn = loss_for(self.module, out, y2, named=isinstance(x, dict))
            checked_loss(self.loss_fn, out, y2)


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
