"""Hessian-vector products for chains of ``Linear`` layers and elementwise activations, written
out (Pearlmutter's R-operator, 1994: the forward pass and the backward pass differentiated once
more along the vector).

The general products (:class:`~.hessian_products.FunctionalProducts`) run ``torch.func``'s
forward-over-reverse under ``torch.vmap``; for small layers its batched kernels spend most of
their time on memory and bookkeeping. Here everything a point's products share (the forward pass,
the activations' first and second derivatives, the backward pass) is computed once per point and
kept, so each product costs one forward and one backward pass of the perturbation, in
feature-major layout ``(points, vectors, features, examples)`` where every product is a plain or
batched matrix product over long contiguous rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import grad, jvp

from .data import EvalData
from .functional import FunctionalModel
from .hessian_products import HessianProducts, forward_mode_works, hessian_vector_product
from .probes import SequentialSplit

__all__ = ["ChainProducts", "chain_products_apply"]

#: Activations whose second derivative is zero almost everywhere.
_PIECEWISE_LINEAR = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.Identity,
    nn.Dropout,
)


@dataclass
class _Primal:
    """What every product at the current points shares, for one data batch.

    ``inputs[l]``: the input of the l-th Linear layer, (K, i, n), or (i, n) for the first (the
    data, shared by every point); ``grads[l]``: the loss gradient at its output (K, o, n);
    ``d1[a]``: the first derivative of activation ``a`` at its input (K, f, n); ``curvature[a]``:
    its second derivative times the loss gradient at its output (None where the second
    derivative is zero); ``head``: softmax (K, C, n) for cross-entropy, else the logits."""

    inputs: list[torch.Tensor]
    grads: list[torch.Tensor]
    d1: list[torch.Tensor]
    curvature: list[torch.Tensor | None]
    head: torch.Tensor

    def select(self, index: torch.Tensor) -> _Primal:
        def pick(t: torch.Tensor | None, shared: bool = False) -> torch.Tensor | None:
            return t if t is None or shared else t[index]

        return _Primal(
            [pick(t, k == 0) for k, t in enumerate(self.inputs)],  # type: ignore[misc]
            [t[index] for t in self.grads],
            [t[index] for t in self.d1],
            [pick(t) for t in self.curvature],
            self.head[index],
        )


class ChainProducts(HessianProducts):
    """Products for ``Linear`` -> (activation | ``Linear``)* models (see the module docstring).

    ``cache_bytes`` bounds what is kept per set of points; beyond it the shared passes are
    recomputed for every product."""

    def __init__(
        self, model: FunctionalModel, data: EvalData, split: SequentialSplit, cache_bytes: int
    ):
        if split.chain is None or not isinstance(split.first, nn.Linear):
            raise ValueError("ChainProducts needs a chain of Linear layers and activations")
        super().__init__(model, data)
        self.cache_bytes = cache_bytes
        self.steps: list[tuple[nn.Module, dict[str, str] | None]] = [
            (split.first, split.first_names),
            *split.chain,
        ]
        with torch.no_grad():
            self.inputs_t = [
                split.prefix(data.tensor_batch(b)[0])
                .reshape(data.tensor_batch(b)[0].shape[0], -1)
                .T.contiguous()
                for b in range(data.n_batches)
            ]
        yb = data.y
        self.cross_entropy = (
            model.default_cross_entropy and yb.ndim == 1 and not yb.is_floating_point()
        )
        self.primal: list[_Primal] | None = None
        self._buffers: dict[str, torch.Tensor] = {}
        self.forward_mode = self.cross_entropy or forward_mode_works(model, data)

    def start(self, W: torch.Tensor) -> None:
        super().start(W)
        self.primal = None
        per_point = self._primal_bytes_per_point()
        if per_point * W.shape[0] <= self.cache_bytes:
            with torch.no_grad():
                self.primal = [self._primal(W, b) for b in range(self.data.n_batches)]

    def keep(self, index: torch.Tensor) -> None:
        super().keep(index)
        self._buffers.clear()
        if self.primal is not None:
            self.primal = [p.select(index) for p in self.primal]

    def batch_products(self, V: torch.Tensor, b: int) -> torch.Tensor:
        assert self.W is not None
        with torch.no_grad():
            primal = self.primal[b] if self.primal is not None else self._primal(self.W, b)
            return chain_products_apply(self, self.W, V, primal, b)

    def buffer(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A scratch array reused across calls (contents undefined); one per name and shape
        (the last data batch may be shorter than the others)."""
        key = f"{name}{tuple(shape)}"
        buf = self._buffers.get(key)
        if buf is None:
            buf = torch.empty(shape, dtype=self.model.dtype, device=self.model.device)
            self._buffers[key] = buf
        return buf

    # -- the shared passes ----------------------------------------------------------------------

    def _params(self, W: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None] | None]:
        """Per step: (weight (K, o, i), bias (K, o) or None) for a Linear layer, else None."""
        p = self.model.params(W)
        return [
            None if names is None else (p[names["weight"]], p.get(names.get("bias", "")))
            for _, names in self.steps
        ]

    def _primal(self, W: torch.Tensor, b: int) -> _Primal:
        x_t = self.inputs_t[b]
        params = self._params(W)
        inputs: list[torch.Tensor] = []
        d1: list[torch.Tensor] = []
        d2: list[torch.Tensor | None] = []
        h: torch.Tensor = x_t
        for (module, _), wb in zip(self.steps, params, strict=True):
            if wb is None:
                h, first, second = _derivatives(module, h)
                d1.append(first)
                d2.append(second)
                continue
            weight, bias = wb
            inputs.append(h)
            h = torch.matmul(weight, h)
            if bias is not None:
                h = h + bias[:, :, None]
        head, g = self._head(h, b)
        grads: list[torch.Tensor] = []
        curvature: list[torch.Tensor | None] = []
        n_linear = len(inputs)
        for wb in reversed(params):
            if wb is None:
                k = len(d1) - 1 - len(curvature)
                second = d2[k]
                curvature.append(None if second is None else g * second)
                g = g * d1[k]
                continue
            grads.append(g)
            if len(grads) < n_linear:
                g = torch.matmul(wb[0].transpose(1, 2), g)
        return _Primal(inputs, grads[::-1], d1, curvature[::-1], head)

    def _head(self, logits: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(softmax or logits, loss gradient at the logits) for data batch ``b``; the loss is
        weighted by the batch's share of the examples."""
        _, yb = self.data.batch(b)
        if self.cross_entropy:
            s = logits.softmax(dim=1)
            onehot = torch.zeros_like(s[0]).scatter_(0, yb[None, :], 1.0)
            return s, (s - onehot) / self.data.n_examples
        loss = self._batch_loss(b)
        g = torch.vmap(grad(loss))(logits.transpose(1, 2)).transpose(1, 2)
        return logits, g

    def _batch_loss(self, b: int) -> Callable[[torch.Tensor], torch.Tensor]:
        _, yb = self.data.batch(b)
        share = self.data.weight(b) / self.data.total_weight
        loss_fn = self.model.loss_fn

        def loss(logits: torch.Tensor) -> torch.Tensor:
            return loss_fn(logits, yb) * share

        return loss

    def head_products(self, primal: _Primal, Ra: torch.Tensor, b: int) -> torch.Tensor:
        """The loss Hessian at the logits times ``Ra`` (K, M, C, n)."""
        if self.cross_entropy:
            s = primal.head[:, None]
            sr = s * Ra
            return (sr - s * sr.sum(dim=2, keepdim=True)) / self.data.n_examples
        hvp = hessian_vector_product(self._batch_loss(b), forward_mode=self.forward_mode)
        mapped = torch.vmap(torch.vmap(hvp, in_dims=(None, 0)))
        out = mapped(primal.head.transpose(1, 2), Ra.transpose(2, 3))
        return out.transpose(2, 3).contiguous()

    def _primal_bytes_per_point(self) -> int:
        """Bytes the shared passes keep per point, over all data batches."""
        size = torch.empty((), dtype=self.model.dtype).element_size()
        widths = 0
        for module, names in self.steps:
            if names is not None:
                widths += 2 * int(module.weight.shape[0])  # type: ignore[union-attr,index,operator]
        return size * widths * 3 * self.data.n_examples


def chain_products_apply(
    chain: ChainProducts, W: torch.Tensor, V: torch.Tensor, primal: _Primal, b: int
) -> torch.Tensor:
    """One data batch's products: the perturbation ``V`` (K, M, P) through the forward pass and
    the backward pass (the R-operator), with the shared passes ``primal``. Large intermediate
    arrays are written in place into buffers reused from call to call: on the CPU, fresh memory
    for each costs more in page faults than the arithmetic."""
    K, M = V.shape[0], V.shape[1]
    params = chain._params(W)
    tangents = chain._params(V.reshape(K * M, -1))
    r_in: list[torch.Tensor | None] = []  # the perturbation at each Linear layer's input
    r_pre: list[torch.Tensor | None] = []  # ... at each activation's input, where needed
    r: torch.Tensor | None = None
    lin = act = 0
    for wb, vb in zip(params, tangents, strict=True):
        if wb is None or vb is None:
            assert r is not None
            d1 = primal.d1[act][:, None]
            if primal.curvature[act] is None:
                r_pre.append(None)
                r = r.mul_(d1)
            else:
                r_pre.append(r)
                r = torch.mul(d1, r, out=chain.buffer(f"r{act}", tuple(r.shape)))
            act += 1
            continue
        r_in.append(r)
        r = _linear_forward(chain, lin, wb[0], vb, primal.inputs[lin], r, K, M)
        lin += 1
    assert r is not None
    rg = chain.head_products(primal, r, b)
    out: dict[str, torch.Tensor] = {}
    for (_, names), wb, vb in zip(
        reversed(chain.steps), reversed(params), reversed(tangents), strict=True
    ):
        if wb is None or vb is None or names is None:
            act -= 1
            rg = rg.mul_(primal.d1[act][:, None])
            curvature, pre = primal.curvature[act], r_pre[act]
            if curvature is not None and pre is not None:
                rg.addcmul_(curvature[:, None], pre)
            continue
        lin -= 1
        rw, rg_next = _linear_backward(chain, lin, wb[0], vb[0], primal, r_in[lin], rg, K, M)
        out[names["weight"]] = rw
        if "bias" in names:
            out[names["bias"]] = rg.sum(dim=-1)
        rg = rg_next if rg_next is not None else rg
    layout = chain.model.layout
    return torch.cat([out[name].reshape(K, M, -1) for name in layout.names], dim=2)


def _linear_forward(
    chain: ChainProducts,
    lin: int,
    weight: torch.Tensor,
    tangent: tuple[torch.Tensor, torch.Tensor | None],
    h: torch.Tensor,
    r: torch.Tensor | None,
    K: int,
    M: int,
) -> torch.Tensor:
    """The perturbation (K, M, o, n) of Linear layer ``lin``'s output: ``V h + W r + v_b``, for
    its weight (K, o, i), its input ``h`` and the perturbation ``r`` of that input."""
    v_weight, v_bias = tangent
    o, i = weight.shape[1], weight.shape[2]
    n = h.shape[-1]
    ra = chain.buffer(f"a{lin}", (K, M, o, n))
    if h.ndim == 2:  # the data: one product for every point and vector
        torch.mm(v_weight.reshape(-1, i), h, out=ra.view(K * M * o, n))
    else:
        torch.bmm(v_weight.reshape(K, M * o, i), h, out=ra.view(K, M * o, n))
    if r is not None:
        ra.view(K * M, o, n).baddbmm_(_per_vector(weight, M), r.view(K * M, i, n))
    if v_bias is not None:
        ra += v_bias.view(K, M, o, 1)
    return ra


def _linear_backward(
    chain: ChainProducts,
    lin: int,
    weight: torch.Tensor,
    v_weight: torch.Tensor,
    primal: _Primal,
    rh: torch.Tensor | None,
    rg: torch.Tensor,
    K: int,
    M: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """For Linear layer ``lin``, given the perturbation ``rg`` (K, M, o, n) of the loss gradient
    at its output: the perturbation of its weight gradient (K, M, o, i), and of the loss gradient
    at its input (None for the first layer)."""
    o, i = weight.shape[1], weight.shape[2]
    h, g = primal.inputs[lin], primal.grads[lin]
    n = rg.shape[-1]
    if h.ndim == 2:
        rw = torch.mm(rg.reshape(-1, n), h.T).view(K, M, o, i)
    else:
        rw = torch.bmm(rg.reshape(K, M * o, n), h.transpose(1, 2)).view(K, M, o, i)
    if rh is not None:
        rw = rw + torch.bmm(rh.reshape(K, M * i, n), g.transpose(1, 2)).view(K, M, i, o).transpose(
            2, 3
        )
    if lin == 0:
        return rw, None
    back = chain.buffer(f"g{lin}", (K, M, i, n))
    wt = _per_vector(weight.transpose(1, 2), M)
    torch.bmm(wt, rg.view(K * M, o, n), out=back.view(K * M, i, n))
    vt = v_weight.view(K, M, o, i).transpose(2, 3).reshape(K, M * i, o)
    back.view(K, M * i, n).baddbmm_(vt, g)
    return rw, back


def _per_vector(weight: torch.Tensor, M: int) -> torch.Tensor:
    """Per-point matrices (K, a, b) repeated for each of M vectors: (K * M, a, b)."""
    if M == 1:
        return weight
    return weight[:, None].expand(-1, M, -1, -1).reshape(-1, *weight.shape[1:])


def _derivatives(
    module: nn.Module, u: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """An elementwise activation's value, first derivative and second derivative (None where it
    is zero almost everywhere) at ``u``."""
    if type(module) is nn.ReLU:
        mask = (u > 0).to(u.dtype)
        return u * mask, mask, None
    ones = torch.ones_like(u)

    def first(t: torch.Tensor) -> torch.Tensor:
        return jvp(module, (t,), (ones,))[1]

    value, d1 = jvp(module, (u,), (ones,))[:2]
    if isinstance(module, _PIECEWISE_LINEAR):
        return value, d1, None
    return value, d1, jvp(first, (u,), (ones,))[1]
