"""Linear chains: a first ``Linear`` layer hoisted (see :mod:`.first_layer`), then a chain of
``Linear`` layers and elementwise activations evaluated for a whole chunk of points at once.

Activations are kept feature-major, (features, K, n), so every operation runs along long
contiguous rows, in buffers reused from chunk to chunk (fresh memory costs page faults on the CPU).
A ``Linear`` layer's weights on the plane are ``W0 + a E0 + b E1``, so its outputs for all K points
come from one wide product with ``[W0; E0; E1]``.

The fast path works in place and into ``out=`` buffers, so it is not for autograd; under autocast
it runs in the autocast dtype (the products in reduced precision, as autocast would).
"""

from __future__ import annotations

import torch
from torch import nn

from ..functional import autocast_on, compute_dtype
from ..points import PlanePoints, Points
from .base import Setting, map_points
from .first_maps import HoistedFirstLayer

__all__ = ["LinearChain"]

#: Per chain step: None for an activation, or ``([W0; E0; E1], b0, [e0; e1])`` for a Linear layer.
ChainStep = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None] | None


class LinearChain(HoistedFirstLayer):
    """Points of a plane through ``Linear`` -> (activation | ``Linear``)* models."""

    name = "linear_chain"
    feature_major = True

    @classmethod
    def refusal(cls, setting: Setting) -> str | None:
        refused = super().refusal(setting)
        if refused is None and setting.split is not None and setting.split.chain is None:
            return (
                f"strategy={cls.name!r} needs a model made of Linear layers and elementwise "
                "activations only; use 'first_layer' or 'auto'"
            )
        return refused

    @property
    def serial(self) -> bool:
        return False  # every point of a chunk at once, whatever the mapping

    def prepare(self) -> None:
        self.steps: list[ChainStep] = []
        self.dtype = self.model.dtype
        self.manual_precision = False
        self._buffers: dict[str, torch.Tensor] = {}

    def start(self, points: Points) -> None:
        self.dtype = compute_dtype(self.model.device, self.model.dtype)
        # Under autocast the products run by hand in the autocast dtype (out= buffers are not
        # autocast): autocast is switched off around them.
        self.manual_precision = autocast_on(self.model.device.type)
        super().start(points)
        assert isinstance(points, PlanePoints)
        self.steps = self._chain_steps(points)

    def batch_losses(self, sl: slice, b: int) -> torch.Tensor:
        assert isinstance(self.points, PlanePoints) and self.first_maps is not None
        maps = self.first_maps.maps(b)
        coords = self.points.coords[sl]
        _, yb = self.data.batch(b)
        if not self.manual_precision:
            return self._losses(maps, coords, yb)
        with torch.autocast(self.model.device.type, enabled=False):
            return self._losses(maps.to(self.dtype), coords.to(self.dtype), yb)

    def _losses(self, maps: torch.Tensor, coords: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        assert self.split.chain is not None
        k, n = coords.shape[0], maps.shape[2]
        coef = torch.cat([torch.ones_like(coords[:, :1]), coords], dim=1)  # (K, 3): 1, a, b
        a = torch.bmm(
            coef.expand(maps.shape[0], k, 3), maps, out=self._buffer("a0", (maps.shape[0], k, n))
        )
        for step, ((module, _), basis) in enumerate(zip(self.split.chain, self.steps, strict=True)):
            if basis is None:
                a = a.relu_() if type(module) is nn.ReLU else module(a)
                continue
            stacked, bias0, bias_dirs = basis
            out = stacked.shape[0] // 3
            m = torch.mm(
                stacked, a.view(a.shape[0], -1), out=self._buffer(f"m{step}", (3 * out, k * n))
            )
            m = m.view(3, out, k, n)
            a = torch.addcmul(
                m[0], coords[:, 0, None], m[1], out=self._buffer(f"a{step}", (out, k, n))
            )
            a.addcmul_(coords[:, 1, None], m[2])
            if bias0 is not None and bias_dirs is not None:
                a += (bias0[:, None] + bias_dirs.T @ coords.T)[:, :, None]
        return self._head_loss(a, yb)

    def _head_loss(self, a: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Mean loss per point of the final activations ``a`` (classes, K, n)."""
        k = a.shape[1]
        if self.model.default_cross_entropy and yb.ndim == 1 and not yb.is_floating_point():
            top = a.amax(dim=0)
            lse = top + (a - top).exp_().sum(dim=0).log_()
            picked = a.gather(0, yb.expand(1, k, a.shape[2])).squeeze(0)
            return (lse - picked).mean(dim=1)
        logits = a.permute(1, 2, 0)  # (K, n, classes)
        loss_fn = self.model.loss_fn
        return map_points(lambda out: loss_fn(out, yb), (logits,), self.vectorized)

    def _chain_steps(self, points: PlanePoints) -> list[ChainStep]:
        """Per chain step: None for an activation, or ``([W0; E0; E1], b0, [e0; e1])``."""
        assert self.split.chain is not None
        layout = self.model.layout
        origin = layout.unflatten(points.origin.to(self.dtype))
        D = layout.unflatten(points.directions.to(self.dtype))
        steps: list[ChainStep] = []
        for _, names in self.split.chain:
            if names is None:
                steps.append(None)
                continue
            w = names["weight"]
            stacked = torch.cat([origin[w], D[w][0], D[w][1]])
            b = names.get("bias")
            steps.append((stacked, origin[b], D[b]) if b else (stacked, None, None))
        return steps

    def _buffer(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A scratch tensor reused across chunks."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != self.dtype:
            buf = torch.empty(shape, dtype=self.dtype, device=self.model.device)
            self._buffers[name] = buf
        return buf
