"""The R-operator (Pearlmutter 1994) of each layer of a sequential convolutional network, for
:mod:`.hessian_conv`: the forward pass of a weight perturbation, and the backward pass
differentiated once more along it, given what the point's own forward and backward passes kept.

Each layer acts on one point's data batch (n examples) and on M perturbations of that point at
once, folded into the batch (tangents are ``(M, n, ...)``): the M perturbations share the point's
weights and kept activations, so a convolution of all of them is one call. A layer keeps, per
point, what its products need: a convolution or ``Linear`` layer its input and the loss gradient
at its output; an activation its first derivative (and its second times the gradient, unless
piecewise linear); a max pooling the argmax of each window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .hessian_chain import _derivatives

__all__ = ["Layer", "Parametrised"]

_convolution_backward = torch.ops.aten.convolution_backward


@dataclass
class Layer:
    """A parameter-free layer: an elementwise activation (``kind="act"``), a max pooling
    (``"pool"``) or a flatten (``"flatten"``); ``scratch`` holds arrays reused from call to
    call."""

    module: nn.Module
    kind: str
    scratch: dict[tuple[int, ...], torch.Tensor] = field(default_factory=dict)

    def primal(self, h: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """The layer's output on ``h`` and what its products keep."""
        if self.kind == "act":
            out, d1, d2 = _derivatives(self.module, h)
            return out, {"d1": d1, "d2": d2}
        if self.kind == "pool":
            m: Any = self.module
            out, index = F.max_pool2d_with_indices(
                h, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode
            )
            return out, {"index": index.flatten(2), "shape": h.shape, "out_shape": out.shape}
        return h.flatten(1), {"shape": h.shape}

    def backward(self, g: torch.Tensor, kept: dict[str, Any]) -> torch.Tensor:
        """The loss gradient at the input from the one at the output (and, for an activation
        with curvature, keep ``d2 * g``)."""
        if self.kind == "act":
            kept["curvature"] = None if kept["d2"] is None else kept.pop("d2") * g
            kept.pop("d2", None)
            return g * kept["d1"]
        if self.kind == "pool":
            return _unpool(g[None], kept, {})[0]
        return g.view(kept["shape"])

    def tangent(self, r: torch.Tensor, kept: dict[str, Any]) -> tuple[torch.Tensor, Any]:
        """The perturbation (M, n, ...) of the output from that of the input, and what the
        backward perturbation needs of it."""
        if self.kind == "act":  # r is this product's own: scaled in place unless kept
            if kept["curvature"] is None:
                return r.mul_(kept["d1"]), None
            return r * kept["d1"], r
        if self.kind == "pool":
            M, index = r.shape[0], kept["index"]
            flat = r.flatten(3).gather(3, index.expand(M, *index.shape))
            return flat.view(M, *kept["out_shape"]), None
        return r.flatten(2), None

    def pool_transposed(self, r: torch.Tensor, kept: dict[str, Any]) -> torch.Tensor:
        """The pooled perturbation (M, n, C, h, w) (a transposed view) from ``r`` (M, C, n, H,
        W), channels before examples as the first layer's matrix product leaves them."""
        M, C, n = r.shape[:3]
        index = _transposed_index(kept)
        flat = r.flatten(3).gather(3, index.expand(M, *index.shape))
        return flat.view(M, C, n, *kept["out_shape"][2:]).transpose(1, 2)

    def unpool_transposed(self, rg: torch.Tensor, kept: dict[str, Any], out: torch.Tensor) -> None:
        """Unpool ``rg`` (M, n, C, h, w) into ``out`` (M, C, n, H x W), channels before
        examples as the first layer's weight gradient wants them."""
        M, n, C = rg.shape[:3]
        index = _transposed_index(kept)
        values = rg.transpose(1, 2).reshape(M, C, n, -1)
        out.zero_().scatter_add_(3, index.expand(M, *index.shape), values)

    def tangent_backward(self, rg: torch.Tensor, kept: dict[str, Any], saved: Any) -> torch.Tensor:
        if self.kind == "act":
            out = rg.mul_(kept["d1"])  # rg is this product's own
            if saved is not None:
                out = out.addcmul_(kept["curvature"], saved)
            return out
        if self.kind == "pool":
            return _unpool(rg, kept, self.scratch)
        return rg.view(rg.shape[0], *kept["shape"])


def _transposed_index(kept: dict[str, Any]) -> torch.Tensor:
    """A pooling's argmax indices (C, n, h x w), channels first, kept after the first use."""
    index = kept.get("index_t")
    if index is None:
        index = kept["index_t"] = kept["index"].transpose(0, 1).contiguous()
    return index


def _unpool(
    rg: torch.Tensor, kept: dict[str, Any], scratch: dict[tuple[int, ...], torch.Tensor]
) -> torch.Tensor:
    """Each window's value back at its argmax, zeros elsewhere: (M, n, C, H, W) from
    (M, n, C, h, w) (windows may overlap: values at one position add up). The result is written
    into ``scratch``'s array of its shape, reused from call to call: on the CPU, fresh memory of
    this size costs more in page faults than the scatter."""
    M = rg.shape[0]
    n, C, H, W = kept["shape"]
    index = kept["index"]
    shape = (M, n, C, H * W)
    out = scratch.get(shape)
    if out is None:
        out = scratch[shape] = rg.new_empty(shape)
    out.zero_().scatter_add_(3, index.expand(M, *index.shape), rg.reshape(M, n, C, -1))
    return out.view(M, n, C, H, W)


@dataclass
class Parametrised:
    """A ``Linear`` or ``Conv2d`` layer (``kind`` ``"linear"`` or ``"conv"``) and the model
    names of its weight and bias (None: no bias)."""

    module: nn.Module
    kind: str
    weight: str
    bias: str | None

    def forward(self, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if self.kind == "linear":
            return F.linear(h, w, b)
        m: Any = self.module
        return F.conv2d(h, w, b, m.stride, m.padding, m.dilation)

    def input_gradient(
        self, g: torch.Tensor, shape: torch.Size, w: torch.Tensor, groups: int = 1
    ) -> torch.Tensor:
        """The gradient at the input (of ``shape``) from ``g`` at the output, weights ``w``."""
        if self.kind == "linear":
            return g @ w
        m: Any = self.module
        empty = torch.empty(shape, dtype=g.dtype, device=g.device)
        return _convolution_backward(
            g,
            empty,
            w,
            None,
            m.stride,
            m.padding,
            m.dilation,
            False,
            [0, 0],
            groups,
            [True, False, False],
        )[0]

    def weight_gradient(self, g: torch.Tensor, h: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """``sum over examples`` of ``g`` (output) times ``h`` (input): the weight gradient."""
        if self.kind == "linear":
            return g.T @ h
        m: Any = self.module
        empty = torch.empty(shape, dtype=g.dtype, device=g.device)
        return _convolution_backward(
            g,
            h,
            empty,
            None,
            m.stride,
            m.padding,
            m.dilation,
            False,
            [0, 0],
            1,
            [False, True, False],
        )[1]

    def tangent(
        self,
        r: torch.Tensor,
        kept: dict[str, Any],
        w: torch.Tensor,
        v: torch.Tensor,
        vb: torch.Tensor | None,
    ) -> torch.Tensor:
        """``W r + V h + v_b`` (M, n, ...) for the input perturbation ``r`` (M, n, ...), the
        kept input ``h`` and M weight perturbations ``v`` (M, *w.shape), ``vb`` (M, o)."""
        M, n = r.shape[0], r.shape[1]
        h = kept["input"]
        out = self.forward(r.reshape(M * n, *r.shape[2:]), w, None)
        out = out.view(M, n, *out.shape[1:])
        by_v = self.forward(h, v.reshape(M * w.shape[0], *w.shape[1:]), None)
        by_v = by_v.view(n, M, w.shape[0], *by_v.shape[2:]).transpose(0, 1)
        out = out.add_(by_v)
        if vb is not None:
            out += vb.view(M, 1, -1, *([1] * (out.ndim - 3)))
        return out

    def tangent_backward(
        self,
        rg: torch.Tensor,
        r: torch.Tensor | None,
        kept: dict[str, Any],
        w: torch.Tensor,
        v: torch.Tensor,
        need_input: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """From the perturbation ``rg`` (M, n, ...) of the loss gradient at the output, and the
        input perturbation ``r`` (None: zero): the perturbations of the weight gradient (M,
        *w.shape), of the bias gradient (M, o), and (``need_input``) of the gradient at the
        input, ``W^T rg + V^T g``."""
        M, n = rg.shape[0], rg.shape[1]
        h, g = kept["input"], kept["grad"]
        sum_dims = (1, *range(3, rg.ndim))
        rb = rg.sum(dim=sum_dims)
        if self.kind == "conv":  # channels-last copies of the kept arrays, made once
            if "input_cl" not in kept:
                kept["input_cl"], kept["grad_cl"] = _layout(h), _layout(g)
            hw, gw = kept["input_cl"], kept["grad_cl"]
        else:
            hw, gw = h, g
        rw = torch.stack(
            [
                self._weight_perturbation(rg[m], gw, hw, None if r is None else r[m], w)
                for m in range(M)
            ]
        )
        if not need_input:
            return rw, rb, None
        back = self.input_gradient(rg.reshape(M * n, *rg.shape[2:]), _batch(h, M), w)
        back = back.view(M, n, *back.shape[1:])
        if self.kind == "linear":
            return rw, rb, back.add_(g @ v)
        grouped = self.input_gradient(
            g if M == 1 else g.repeat(1, M, *([1] * (g.ndim - 2))),
            _grouped(h, M),
            v.reshape(-1, *v.shape[2:]),
            M,
        )
        grouped = grouped.view(n, M, *h.shape[1:]).transpose(0, 1)
        return rw, rb, back.add_(grouped)

    def _weight_perturbation(
        self,
        rg: torch.Tensor,
        g: torch.Tensor,
        h: torch.Tensor,
        r: torch.Tensor | None,
        w: torch.Tensor,
    ) -> torch.Tensor:
        """``rg`` times ``h`` plus ``g`` times ``r``, summed over examples, for one vector (for a
        convolution, ``g`` and ``h`` are channels-last on the CPU)."""
        if self.kind == "linear":
            return rg.T @ h if r is None else torch.addmm(rg.T @ h, g.T, r)
        out = self.weight_gradient(_layout(rg), h, w.shape)
        return out if r is None else out + self.weight_gradient(g, _layout(r), w.shape)


def _layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` channels-last on the CPU, where oneDNN's convolution weight gradient is about
    twice as fast in that layout (LeNet-5's second convolution: 0.9 ms against 2.1 ms on 256
    examples, one thread); as is elsewhere. A no-op for an array already in that layout."""
    if x.device.type != "cpu":
        return x
    return x.contiguous(memory_format=torch.channels_last)


def _batch(h: torch.Tensor, M: int) -> torch.Size:
    return torch.Size((M * h.shape[0], *h.shape[1:]))


def _grouped(h: torch.Tensor, M: int) -> torch.Size:
    return torch.Size((h.shape[0], M * h.shape[1], *h.shape[2:]))
