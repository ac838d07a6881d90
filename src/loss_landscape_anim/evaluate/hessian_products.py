"""Hessian-vector products of the mean loss over the evaluation data, at many points at once.

The Hessian of the mean loss over all the data is the sum over the fixed data batches of each
batch's Hessian weighted by its share of the examples, so a product is accumulated batch by batch
(in float64). :class:`HessianProducts` is the interface; :class:`FunctionalProducts` works for
every model (``torch.func``: forward-over-reverse, ``jvp`` of ``grad``, mapped over points and
vectors with ``torch.vmap``); :mod:`.hessian_chain` has a faster one for chains of ``Linear``
layers and elementwise activations.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.func import grad, jvp

from .data import EvalData
from .functional import FunctionalModel

__all__ = ["FunctionalProducts", "HessianProducts", "no_autocast"]


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
        with no_autocast(self.model.device.type):
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
    (convolutions on the CPU, or a model ``torch.vmap`` cannot run)."""

    def __init__(self, model: FunctionalModel, data: EvalData, *, vectorized: bool):
        super().__init__(model, data)
        self.vectorized = vectorized

    def batch_products(self, V: torch.Tensor, b: int) -> torch.Tensor:
        hvp = self._hvp(b)
        W = self.W
        assert W is not None
        if self.vectorized:
            return torch.vmap(torch.vmap(hvp, in_dims=(None, 0)))(W, V)
        return torch.stack([torch.stack([hvp(W[k], v) for v in V[k]]) for k in range(len(W))])

    def _hvp(self, b: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        xb, yb = self.data.batch(b)
        share = xb.shape[0] / self.data.n_examples
        model = self.model

        def loss(w: torch.Tensor) -> torch.Tensor:
            return model.loss(model.params(w), xb, yb) * share

        def hvp(w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return jvp(grad(loss), (w,), (v,))[1]

        return hvp


@contextlib.contextmanager
def no_autocast(device_type: str) -> Iterator[None]:
    """Curvature in the model's own dtype: autocast's reduced precision would drown the small
    eigenvalues in rounding noise."""
    context: contextlib.AbstractContextManager[Any]
    try:
        context = torch.autocast(device_type, enabled=False)
    except RuntimeError:  # a device type autocast does not know
        context = contextlib.nullcontext()
    with context:
        yield
