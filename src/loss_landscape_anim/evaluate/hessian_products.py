"""Hessian-vector products of the mean loss over the evaluation data, at many points at once.

The Hessian of the mean loss over all the data is the sum over the fixed data batches of each
batch's Hessian weighted by its share of the loss's terms (examples, or label tokens: see
:meth:`~.data.EvalData.weight`), so a product is accumulated batch by batch
(in float64). :class:`HessianProducts` is the interface; :class:`FunctionalProducts` works for
every model (``torch.func``: forward-over-reverse, ``jvp`` of ``grad``, mapped over points and
vectors with ``torch.vmap``); :mod:`.hessian_chain` has a faster one for chains of ``Linear``
layers and elementwise activations.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.func import grad, jvp
from torch.nn.attention import SDPBackend, sdpa_kernel

from .data import EvalData
from .functional import FunctionalModel

logger = logging.getLogger(__name__)

__all__ = [
    "FunctionalProducts",
    "HessianProducts",
    "forward_mode_works",
    "hessian_vector_product",
    "math_attention",
    "no_autocast",
]


class HessianProducts(ABC):
    """``H(w_k) v_km`` for K points ``w_k`` and M vectors per point.

    :meth:`start` is called once per set of points (it may precompute what every product at
    those points shares), then :meth:`products` any number of times; :meth:`keep` narrows the
    points to a subset (the ones an iterative solver has not finished with).
    """

    def __init__(self, model: FunctionalModel, data: EvalData):
        self.model = model
        self.data = data
        self.W: torch.Tensor | None = None
        #: Products under autocast in this dtype (None: autocast off, the model's own dtype).
        self.autocast_dtype: torch.dtype | None = None

    def start(self, W: torch.Tensor) -> None:
        """Prepare for products at the points ``W`` (K, P), in the model's dtype."""
        self.W = W

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the points ``index`` (K',) of the current ones, in that order."""
        assert self.W is not None, "call start() first"
        self.W = self.W[index]

    def products(self, V: torch.Tensor) -> torch.Tensor:
        """``H(w_k) V[k, m]`` (K, M, P) float64 for vectors ``V`` (K, M, P), one row of
        vectors per current point."""
        assert self.W is not None, "call start() first"
        V = V.to(self.model.dtype)
        device_type = self.model.device.type
        context = (
            no_autocast(device_type)
            if self.autocast_dtype is None
            else torch.autocast(device_type, dtype=self.autocast_dtype)
        )
        with context, math_attention():
            if self.data.n_batches == 1:
                return self.batch_products(V, 0).double()
            total = torch.zeros(V.shape, dtype=torch.float64, device=V.device)
            for b in range(self.data.n_batches):
                total += self.batch_products(V, b).double()
        return total

    @abstractmethod
    def batch_products(self, V: torch.Tensor, b: int) -> torch.Tensor:
        """The share of data batch ``b`` in :meth:`products` (its Hessian times its share of the
        examples), in the model's dtype."""


class FunctionalProducts(HessianProducts):
    """Products for any model: ``jvp`` of ``grad`` of the functional loss (forward-over-reverse),
    under ``torch.vmap`` over vectors and points when ``vectorized``, else one at a time
    (convolutions on the CPU, or a model ``torch.vmap`` cannot run). A loss without forward-mode
    derivatives (``F.huber_loss``; ``F.mse_loss``, whose backward makes zero tensors that forward
    mode cannot write) gets ``grad`` of ``grad`` instead (reverse-over-reverse), found once by a
    probe on two examples."""

    def __init__(self, model: FunctionalModel, data: EvalData, *, vectorized: bool):
        super().__init__(model, data)
        self.vectorized = vectorized
        self.forward_mode = forward_mode_works(model, data)

    def batch_products(self, V: torch.Tensor, b: int) -> torch.Tensor:
        hvp = self._hvp(b)
        W = self.W
        assert W is not None
        if self.vectorized:
            return torch.vmap(torch.vmap(hvp, in_dims=(None, 0)))(W, V)
        return torch.stack([torch.stack([hvp(W[k], v) for v in V[k]]) for k in range(len(W))])

    def _hvp(self, b: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        xb, yb = self.data.batch(b)
        share = self.data.weight(b) / self.data.total_weight
        model = self.model

        def loss(w: torch.Tensor) -> torch.Tensor:
            return model.loss(model.params(w), xb, yb) * share

        return hessian_vector_product(loss, forward_mode=self.forward_mode)


def hessian_vector_product(
    loss: Callable[[torch.Tensor], torch.Tensor], *, forward_mode: bool
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(w, v) -> H(w) v`` for the scalar function ``loss`` of flat weights: forward-over-reverse
    (one forward-mode pass through the gradient), or reverse-over-reverse (the gradient of
    ``grad(loss) . v``)."""
    if forward_mode:
        return lambda w, v: jvp(grad(loss), (w,), (v,))[1]
    return lambda w, v: grad(lambda u: (grad(loss)(u) * v).sum())(w)


def forward_mode_works(model: FunctionalModel, data: EvalData) -> bool:
    """Whether forward-over-reverse runs the model and its loss (on two examples)."""
    x, y = data.head(2)
    w = model.flat()

    def loss(u: torch.Tensor) -> torch.Tensor:
        return model.loss(model.params(u), x, y)

    try:
        with math_attention():
            jvp(grad(loss), (w,), (torch.ones_like(w),))
    except (RuntimeError, NotImplementedError) as exc:
        logger.info("forward-mode derivatives fail (%s); Hessian products by reverse mode", exc)
        return False
    return True


@contextlib.contextmanager
def no_autocast(device_type: str) -> Iterator[None]:
    """Curvature in the model's own dtype: autocast's reduced precision would drown the small
    eigenvalues in rounding noise. Attention on its math kernel (see :func:`math_attention`)."""
    context: contextlib.AbstractContextManager[Any]
    try:
        context = torch.autocast(device_type, enabled=False)
    except RuntimeError:  # a device type autocast does not know
        context = contextlib.nullcontext()
    with context, math_attention():
        yield


def math_attention() -> contextlib.AbstractContextManager[Any]:
    """``F.scaled_dot_product_attention`` (a Hugging Face model's default ``"sdpa"`` attention,
    or a model's own call) on its math kernel, written with differentiable operators: the fused
    kernels (flash attention on the CPU and GPUs, memory-efficient attention) have a backward
    pass but neither its derivative (reverse-over-reverse) nor forward-mode derivatives, which
    Hessian-vector products need. The same function, computed without fusion."""
    return sdpa_kernel([SDPBackend.MATH])
