"""Products with the two positive semi-definite stand-ins for the Hessian that second-order
optimizers and large-model papers use: the generalised Gauss-Newton matrix and the empirical
Fisher.

With the model's outputs ``z = f(w; x)`` and the loss ``l(z, y)`` (the model's ``loss_fn``), the
Hessian of the mean loss splits into ``J^T H_z J`` plus a term weighted by the loss gradient at
the outputs times the outputs' second derivatives. The **generalised Gauss-Newton** matrix
(Schraudolph 2002, *Fast Curvature Matrix-Vector Products for Second-Order Gradient Descent*)
keeps the first term, ``G = J^T H_z J`` with ``J = dz/dw`` and ``H_z`` the loss Hessian in the
outputs: positive semi-definite whenever the loss is convex in the outputs (cross-entropy,
squared error), and equal to the Hessian where the residual term vanishes (a perfect fit). For
cross-entropy it is also the Fisher information of the model's predictive distribution (Martens
2020, *New Insights and Perspectives on the Natural Gradient Method*). A product ``G v`` is a
forward-mode ``J v``, the loss Hessian in the outputs times that (small), and a backward pass.

The **empirical Fisher** ``F = (1/N) sum_i g_i g_i^T``, with ``g_i`` the gradient of example i's
loss (``loss_fn`` on that example alone), uses the labels of the data instead of the model's
predictions; it differs from the Fisher, and from the Hessian, away from a perfect fit (Kunstner,
Balles & Hennig 2019, *Limitations of the Empirical Fisher Approximation*). A product is ``G_b^T
(G_b v)`` over each data batch's per-example gradients ``G_b``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch.func import grad, jvp, vjp

from ..data import Inputs
from ..data.batches import take
from .data import EvalData
from .functional import FunctionalModel
from .hessian_products import HessianProducts

__all__ = ["OPERATORS", "FisherProducts", "GaussNewtonProducts"]

#: The curvature operators: the Hessian of the mean loss, the generalised Gauss-Newton matrix,
#: the empirical Fisher.
OPERATORS = ("hessian", "ggn", "fisher")

logger = logging.getLogger(__name__)

Product = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class GaussNewtonProducts(HessianProducts):
    """``G(w_k) v`` with ``G = J^T H_z J`` (see the module docstring), mapped over vectors and
    points with ``torch.vmap`` when ``vectorized``, else one at a time."""

    def __init__(self, model: FunctionalModel, data: EvalData, *, vectorized: bool):
        super().__init__(model, data)
        self.vectorized = vectorized

    def batch_products(self, V: torch.Tensor, b: int) -> torch.Tensor:
        product = self._product(b)
        W = self.W
        assert W is not None
        if self.vectorized:
            return torch.vmap(torch.vmap(product, in_dims=(None, 0)))(W, V)
        return torch.stack([torch.stack([product(W[k], v) for v in V[k]]) for k in range(len(W))])

    def _product(self, b: int) -> Product:
        xb, yb = self.data.batch(b)
        share = self.data.weight(b) / self.data.total_weight
        model = self.model

        def outputs(w: torch.Tensor) -> torch.Tensor:
            return model.outputs(model.params(w), xb)

        def output_loss(z: torch.Tensor) -> torch.Tensor:
            return model.loss_fn(z, yb) * share

        def product(w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            z, pull = vjp(outputs, w)[:2]
            Jv = jvp(outputs, (w,), (v,))[1]
            return pull(jvp(grad(output_loss), (z,), (Jv,))[1])[0]

        return product


class FisherProducts(HessianProducts):
    """``F(w_k) v`` with the empirical Fisher ``F = (1/N) sum_i g_i g_i^T`` (see the module
    docstring). The per-example gradients of a data batch come from ``torch.vmap`` over its
    examples where the model and loss allow it (one example at a time otherwise), once per point
    for all of its vectors."""

    def __init__(self, model: FunctionalModel, data: EvalData):
        if model.loss_fn.tokens:
            raise ValueError(
                "operator='fisher' takes the gradients of each example's loss, and a token loss "
                "(a language model's) is a mean over label tokens, not examples: use "
                "operator='ggn' (for cross-entropy, the Fisher of the model's predictions)"
            )
        super().__init__(model, data)
        self.vectorized = True
        w = model.layout.flatten(model.module).to(model.device, model.dtype)
        try:
            self._example_gradients(0, examples=2)(w)
        except RuntimeError as exc:  # a model or loss that vmap cannot run
            logger.info("per-example gradients one example at a time: vmap failed (%s)", exc)
            self.vectorized = False

    def batch_products(self, V: torch.Tensor, b: int) -> torch.Tensor:
        W = self.W
        assert W is not None
        gradients = self._example_gradients(b)
        out = []
        for k in range(W.shape[0]):
            G = gradients(W[k])  # (n, P)
            out.append((V[k] @ G.T) @ G)
        return torch.stack(out) / self.data.n_examples

    def _example_gradients(
        self, b: int, examples: int | None = None
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """Per-example loss gradients (n, P) at weights (P,), for the first ``examples`` of data
        batch ``b`` (all by default)."""
        x, y = self.data.batch(b)
        xb, yb = take(x, slice(0, examples)), y[:examples]
        model = self.model

        def example_loss(w: torch.Tensor, x: Inputs, y: torch.Tensor) -> torch.Tensor:
            return model.loss(model.params(w), take(x, None), y[None])  # a batch of one

        each = grad(example_loss)
        if self.vectorized:
            mapped = torch.vmap(each, in_dims=(None, 0, 0))
            return lambda w: mapped(w, xb, yb)
        n = len(yb)
        return lambda w: torch.stack([each(w, take(xb, i), yb[i]) for i in range(n)])
