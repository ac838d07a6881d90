"""Hessian-vector products for sequential convolutional networks (``Conv2d``, ``Linear``,
elementwise activations, max pooling, ``Flatten``; LeNet-5 and its kind), written out and shared
across points.

The general products (:class:`~.hessian_products.FunctionalProducts`) run ``torch.func``'s
forward-over-reverse one point at a time on the CPU (``vmap`` would make grouped convolutions):
every product recomputes the point's forward and backward passes, and on LeNet-5 that is about
two thirds of its cost. Here (Pearlmutter's R-operator, per layer in :mod:`.conv_layers`):

- what every product at a point shares (each layer's input, the loss gradient at each layer's
  output, the activations' derivatives, the pooling windows' argmax) is computed once per point
  in :meth:`start` and kept, so a product costs the forward and backward passes of the
  perturbation only;
- the first layer's input is the data, the same for every point: its output, and its weight
  gradient, for every point and vector of a call are two matrix products with the data's
  patches (``unfold``, taken once per data batch), instead of two convolutions per point;
- a ReLU just before a max pooling moves after it (they commute), so its derivative is taken on
  the pooled values, a quarter of them.

The rest of the network runs point by point, with all vectors of a point folded into one batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import grad, jvp

from ..data import Inputs
from .conv_layers import Layer, Parametrised
from .data import EvalData
from .functional import FunctionalModel
from .hessian_chain import _PIECEWISE_LINEAR
from .hessian_products import HessianProducts
from .probes import ELEMENTWISE

__all__ = ["ConvChain", "ConvChainProducts", "conv_chain"]

#: At most this many points share a call: past that the first layer's matrix products gain
#: nothing more and the kept passes only fill the caches (LeNet-5 on 256 inputs, one thread:
#: 0.74, 0.64, 0.63 and 0.64 s a point of the convexity map with 2, 4, 8 and 16 points).
MAX_CHUNK_POINTS = 8


@dataclass(frozen=True)
class ConvChain:
    """A sequential model as parameter-free ``prefix`` modules (applied to the data once), its
    ``first`` layer with parameters, and the ``rest``."""

    prefix: nn.Sequential
    first: Parametrised
    rest: list[Layer | Parametrised]


def conv_chain(model: nn.Module, inputs: Inputs) -> ConvChain | None:
    """``model`` as a :class:`ConvChain` if it is (or declares through ``as_sequential()``) an
    ``nn.Sequential`` of supported layers with at least one ``Conv2d``, and no buffers, that
    computes what the model computes on the first two examples of ``inputs``; else None."""
    if isinstance(inputs, dict):  # named inputs (a language model's) are no sequential chain
        return None
    sample = inputs[:2]
    seq: Any = model if isinstance(model, nn.Sequential) else None
    as_sequential = getattr(model, "as_sequential", None)
    if seq is None and callable(as_sequential):
        seq = as_sequential()
    if not isinstance(seq, nn.Sequential) or any(True for _ in model.buffers()):
        return None
    modules = list(seq)
    if not any(isinstance(m, nn.Conv2d) for m in modules):
        return None
    names = {id(p): n for n, p in model.named_parameters()}
    layers = [_layer(m, names) for m in modules]
    if any(layer is None for layer in layers):
        return None
    if sum(len(list(m.parameters())) for m in modules) != len(names):
        return None
    with torch.no_grad():
        if not torch.allclose(seq(sample), model(sample), rtol=1e-4, atol=1e-5):
            return None
    chain = _relu_after_pooling([layer for layer in layers if layer is not None])
    k = next(i for i, layer in enumerate(chain) if isinstance(layer, Parametrised))
    first = chain[k]
    assert isinstance(first, Parametrised)
    return ConvChain(nn.Sequential(*[layer.module for layer in chain[:k]]), first, chain[k + 1 :])


def _layer(module: nn.Module, names: dict[int, str]) -> Layer | Parametrised | None:
    params = dict(module.named_parameters())
    if isinstance(module, nn.Conv2d | nn.Linear):
        if isinstance(module, nn.Conv2d) and (
            module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str)
        ):
            return None
        if id(params["weight"]) not in names:
            return None
        bias = names.get(id(params["bias"])) if "bias" in params else None
        kind = "conv" if isinstance(module, nn.Conv2d) else "linear"
        return Parametrised(module, kind, names[id(params["weight"])], bias)
    if params:
        return None
    if isinstance(module, ELEMENTWISE):
        return Layer(module, "act")
    if type(module) is nn.MaxPool2d and not module.return_indices:
        return Layer(module, "pool")
    if isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
        return Layer(module, "flatten")
    return None


def _relu_after_pooling(layers: list[Layer | Parametrised]) -> list[Layer | Parametrised]:
    """Each ReLU directly before a max pooling moved after it: ``max(relu(x), relu(y)) ==
    relu(max(x, y))``, and the ReLU then acts on the pooled values only."""
    layers = list(layers)
    for i in range(len(layers) - 1):
        a, b = layers[i], layers[i + 1]
        if type(a.module) is nn.ReLU and isinstance(b, Layer) and b.kind == "pool":
            layers[i], layers[i + 1] = b, a
    return layers


class ConvChainProducts(HessianProducts):
    """Products for :class:`ConvChain` models (see the module docstring). ``cache_bytes`` bounds
    what is kept for the points of one call, and so the points per call
    (:attr:`chunk_points`)."""

    def __init__(self, model: FunctionalModel, data: EvalData, chain: ConvChain, cache_bytes: int):
        super().__init__(model, data)
        self.chain = chain
        self.cross_entropy = (
            model.default_cross_entropy and data.y.ndim == 1 and not data.y.is_floating_point()
        )
        with torch.no_grad():
            self.patches = [
                self._patches(data.tensor_batch(b)[0]).contiguous() for b in range(data.n_batches)
            ]
        self.kept: list[list[tuple[list[dict[str, Any]], dict[str, Any]]]] | None = None
        self._buffers: dict[str, torch.Tensor] = {}
        # The layers before the second one with parameters need the loss gradient only for an
        # activation's curvature term: without one, the shared backward pass stops there.
        rest = chain.rest
        self._lead = next((i for i, x in enumerate(rest) if isinstance(x, Parametrised)), len(rest))
        self._lead_curvature = any(
            isinstance(x, Layer) and x.kind == "act" and not _piecewise_linear(x.module)
            for x in rest[: self._lead]
        )
        w = model.layout.flatten(model.module).to(model.device, model.dtype)
        with torch.no_grad():
            one = self._primal(w[None], 0)[0]
        per_point = _bytes(one) * data.n_batches
        self.chunk_points = max(1, min(MAX_CHUNK_POINTS, cache_bytes // max(per_point, 1)))

    def start(self, W: torch.Tensor) -> None:
        super().start(W)
        with torch.no_grad():
            self.kept = [self._primal(W, b) for b in range(self.data.n_batches)]

    def keep(self, index: torch.Tensor) -> None:
        super().keep(index)
        assert self.kept is not None
        self.kept = [[batch[i] for i in index.tolist()] for batch in self.kept]

    def batch_products(self, V: torch.Tensor, b: int) -> torch.Tensor:
        assert self.W is not None and self.kept is not None
        with torch.no_grad():
            return self._products(self.W, V, b)

    # -- the first layer, for every point at once --------------------------------------------

    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        """The first layer's input as a matrix (features + 1, examples x positions): the
        unfolded patches of a convolution's input, or the transposed input of a ``Linear``
        layer, and a row of ones (for the bias)."""
        h = self.chain.prefix(x)
        first = self.chain.first
        if first.kind == "linear":
            cols = h.T
        else:
            m: Any = first.module
            unfolded = F.unfold(h, m.kernel_size, m.dilation, m.padding, m.stride)
            self._out_size = _conv_out_size(h.shape[2:], m)
            cols = unfolded.transpose(0, 1).reshape(unfolded.shape[1], -1)
        return torch.cat([cols, cols.new_ones(1, cols.shape[1])])

    def _first_outputs(
        self, weights: torch.Tensor, bias: torch.Tensor | None, b: int, name: str
    ) -> torch.Tensor:
        """The first layer's outputs (J, n, o, ...) for J weights (J, o, ...) and biases (J, o),
        by one matrix product with the data batch's patches, into the scratch array ``name``."""
        patches = self.patches[b]
        J, o = weights.shape[0], weights.shape[1]
        bias = weights.new_zeros(J, o) if bias is None else bias
        A = torch.cat([weights.reshape(J * o, -1), bias.reshape(J * o, 1)], dim=1)
        out = torch.mm(A, patches, out=self.buffer(name, (J * o, patches.shape[1])))
        n = self.data.tensor_batch(b)[0].shape[0]
        shape = (J, o, n) if self.chain.first.kind == "linear" else (J, o, n, *self._out_size)
        return out.view(shape).transpose(1, 2)

    def buffer(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A scratch array reused across calls (contents undefined), one per name and shape: on
        the CPU, fresh memory for the large ones costs more in page faults than the arithmetic."""
        key = f"{name}{shape}"
        buf = self._buffers.get(key)
        if buf is None:
            buf = torch.empty(shape, dtype=self.model.dtype, device=self.model.device)
            self._buffers[key] = buf
        return buf

    # -- the shared passes -------------------------------------------------------------------

    def _primal(self, W: torch.Tensor, b: int) -> list[tuple[list[dict[str, Any]], dict[str, Any]]]:
        """For each point of ``W`` (K, P): what each layer of the rest keeps, and the head's."""
        _, yb = self.data.batch(b)
        params = self.model.params(W)
        first = self.chain.first
        bias = None if first.bias is None else params[first.bias]
        z = self._first_outputs(params[first.weight], bias, b, "primal")
        out = []
        for k in range(W.shape[0]):
            h = z[k].contiguous()
            kept: list[dict[str, Any]] = []
            for layer in self.chain.rest:
                if isinstance(layer, Parametrised):
                    kept.append({"input": h})
                    bias = None if layer.bias is None else params[layer.bias][k]
                    h = layer.forward(h, params[layer.weight][k], bias)
                else:
                    h, keep = layer.primal(h)
                    kept.append(keep)
            head, g = self._head(h, yb, b)
            for i in range(len(kept) - 1, -1, -1):
                layer, keep = self.chain.rest[i], kept[i]
                if i < self._lead and not self._lead_curvature:
                    keep["curvature"] = None  # the gradient below is not needed
                elif isinstance(layer, Parametrised):
                    keep["grad"] = g
                    if i > self._lead or self._lead_curvature:
                        g = layer.input_gradient(g, keep["input"].shape, params[layer.weight][k])
                else:
                    g = layer.backward(g, keep)
            out.append((kept, head))
        return out

    def _head(self, logits: torch.Tensor, yb: torch.Tensor, b: int) -> tuple[dict[str, Any], Any]:
        """What the loss head keeps, and the loss gradient at the logits (the batch's loss
        weighted by its share of the examples)."""
        if self.cross_entropy:
            s = logits.softmax(dim=1)
            return {"softmax": s}, (
                s - F.one_hot(yb, s.shape[1]).to(s.dtype)
            ) / self.data.n_examples
        loss = self._batch_loss(yb)
        return {"logits": logits}, grad(loss)(logits)

    def _batch_loss(self, yb: torch.Tensor) -> Any:
        share = yb.shape[0] / self.data.n_examples
        loss_fn = self.model.loss_fn
        return lambda logits: loss_fn(logits, yb) * share

    def _head_products(
        self, head: dict[str, Any], r: torch.Tensor, yb: torch.Tensor
    ) -> torch.Tensor:
        """The loss Hessian at the logits times each perturbation ``r`` (M, n, ...)."""
        if self.cross_entropy:
            s = head["softmax"]
            sr = s * r
            return (sr - s * sr.sum(dim=-1, keepdim=True)) / self.data.n_examples
        second = grad(self._batch_loss(yb))
        logits = head["logits"]
        return torch.stack([jvp(second, (logits,), (r[m],))[1] for m in range(r.shape[0])])

    # -- the products ------------------------------------------------------------------------

    def _products(self, W: torch.Tensor, V: torch.Tensor, b: int) -> torch.Tensor:
        assert self.kept is not None
        K, M = V.shape[0], V.shape[1]
        _, yb = self.data.batch(b)
        params, tangents = self.model.params(W), self.model.params(V)
        first = self.chain.first
        vw = tangents[first.weight]
        vb = None if first.bias is None else tangents[first.bias].reshape(K * M, -1)
        rz = self._first_outputs(vw.reshape(K * M, *vw.shape[2:]), vb, b, "tangent")
        o, positions = rz.shape[2], self.patches[b].shape[1]
        first_rg = self.buffer("first_rg", (K * M * o, positions))
        out = torch.empty(K, M, self.model.layout.n_params, dtype=V.dtype, device=V.device)
        offsets = dict(zip(self.model.layout.names, self.model.layout.offsets(), strict=True))
        head_layer = self.chain.rest[0]
        # A max pooling right after the first layer reads its output, and writes its gradient,
        # in the matrix products' own layout (channels before examples): no copies.
        pooled = isinstance(head_layer, Layer) and head_layer.kind == "pool"
        rest = self.chain.rest[1:] if pooled else self.chain.rest
        for k in range(K):
            kept, head = self.kept[b][k]
            rz_k = rz[k * M : (k + 1) * M].transpose(1, 2)  # (M, o, n, ...)
            if pooled:
                assert isinstance(head_layer, Layer)
                r = head_layer.pool_transposed(rz_k, kept[0])
            else:
                r = self.buffer("r0", (M, *rz.shape[1:]))
                r.copy_(rz[k * M : (k + 1) * M])
            layer_kept = kept[1:] if pooled else kept
            saved: list[Any] = []
            for layer, keep in zip(rest, layer_kept, strict=True):
                if isinstance(layer, Parametrised):
                    saved.append(r)
                    bias = None if layer.bias is None else tangents[layer.bias][k]
                    w, v = params[layer.weight][k], tangents[layer.weight][k]
                    r = layer.tangent(r, keep, w, v, bias)
                else:
                    r, s = layer.tangent(r, keep)
                    saved.append(s)
            rg = self._head_products(head, r, yb)
            for layer, keep, s in zip(
                reversed(rest), reversed(layer_kept), reversed(saved), strict=True
            ):
                if isinstance(layer, Parametrised):
                    w, v = params[layer.weight][k], tangents[layer.weight][k]
                    rw, rb, back = layer.tangent_backward(rg, s, keep, w, v, need_input=True)
                    assert back is not None
                    rg = back
                    _put(out[k], offsets, layer.weight, rw)
                    if layer.bias is not None:
                        _put(out[k], offsets, layer.bias, rb)
                else:
                    rg = layer.tangent_backward(rg, keep, s)
            rows = first_rg[k * M * o : (k + 1) * M * o]
            if pooled:
                assert isinstance(head_layer, Layer)
                head_layer.unpool_transposed(
                    rg, kept[0], rows.view(M, o, -1, rz_k.shape[3:].numel())
                )
            else:  # (M, n, o, positions...) -> (M, o, n x positions)
                rows.view(M, o, *rg.shape[1:2], *rg.shape[3:]).copy_(rg.transpose(1, 2))
        # The last column of the patches is ones: the last column here is the bias gradient.
        grads = (first_rg @ self.patches[b].T).view(K, M, o, -1)
        _put(out, offsets, first.weight, grads[..., :-1])
        if first.bias is not None:
            _put(out, offsets, first.bias, grads[..., -1])
        return out


def _put(
    out: torch.Tensor, offsets: dict[str, tuple[int, int]], name: str, value: torch.Tensor
) -> None:
    """Write ``value`` (..., M, *shape) into the flat slots of parameter ``name`` of ``out``
    (..., M, P)."""
    a, b = offsets[name]
    out[..., a:b] = value.reshape(*out.shape[:-1], b - a)


def _piecewise_linear(module: nn.Module) -> bool:
    """Whether an activation's second derivative is zero almost everywhere."""
    return isinstance(module, _PIECEWISE_LINEAR)


def _conv_out_size(size: torch.Size, m: nn.Module) -> tuple[int, int]:
    out = []
    for i in range(2):
        k, s, p, d = (m.kernel_size[i], m.stride[i], m.padding[i], m.dilation[i])  # type: ignore[index]
        out.append(math.floor((size[i] + 2 * p - d * (k - 1) - 1) / s + 1))
    return out[0], out[1]


def _bytes(kept: tuple[list[dict[str, Any]], dict[str, Any]]) -> int:
    """Bytes of the tensors a point keeps."""
    total = 0
    for part in [*kept[0], kept[1]]:
        for value in part.values():
            if isinstance(value, torch.Tensor):
                total += value.numel() * value.element_size()
    return total
