"""The mean loss over the evaluation data and its gradient in the weights, at one weight vector:
what gradient ascent in weight space (worst-case sharpness) needs."""

from __future__ import annotations

import torch
from torch.func import grad_and_value

from ..data import Inputs
from .data import EvalData
from .functional import FunctionalModel
from .hessian_products import no_autocast

__all__ = ["loss_and_gradient"]


def loss_and_gradient(
    model: FunctionalModel, data: EvalData, w: torch.Tensor
) -> tuple[float, torch.Tensor]:
    """The mean loss over ``data`` at the flat weights ``w`` (P,) (in the model's dtype, on its
    device) and its gradient (P,) float64, accumulated over the fixed data batches, each
    weighted by its share of the loss's terms (examples, or label tokens)."""
    total = 0.0
    gradient = torch.zeros(w.shape[0], dtype=torch.float64, device=w.device)
    with no_autocast(model.device.type):
        for b in range(data.n_batches):
            xb, yb = data.batch(b)
            share = data.weight(b) / data.total_weight

            def loss(flat: torch.Tensor, xb: Inputs = xb, yb: torch.Tensor = yb) -> torch.Tensor:
                return model.loss(model.params(flat), xb, yb)

            g, value = grad_and_value(loss)(w)
            total += share * float(value)
            gradient += share * g.double()
    return total, gradient
