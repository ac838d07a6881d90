"""Hoisted first layer: the first layer (linear in its weights) is evaluated 3 times per data batch
for a whole job; each point's first-layer output is combined from those, and only the rest of the
network runs per point (vectorised, or one point at a time for convolutions: see
``LossEvaluator``), in the faster equivalent form of :mod:`.faster_layers`."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.func import functional_call

from ..points import PlanePoints
from .base import map_points
from .faster_layers import WindowMax2d, faster_sequential
from .first_maps import HoistedFirstLayer

__all__ = ["FirstLayer"]


class FirstLayer(HoistedFirstLayer):
    """Points of a plane through a sequential model cut after its first layer."""

    name = "first_layer"

    def prepare(self) -> None:
        self.rest = faster_sequential(self.split.rest)  # run once per point: its faster form
        self._z: dict[int, torch.Tensor] = {}
        pool = self.rest[0] if len(self.rest) else None
        if not self.vectorized and isinstance(pool, WindowMax2d):
            # A max pooling first: the maps are cut into its window positions, and each point's
            # pooled output is a maximum over contiguous planes (see FirstLayerMaps).
            self.window = pool.kernel
            self.rest = nn.Sequential(OrderedDict(list(self.rest.named_children())[1:]))

    def batch_losses(self, sl: slice, b: int) -> torch.Tensor:
        assert isinstance(self.points, PlanePoints) and self.first_maps is not None
        maps = self.first_maps.maps(b)
        coords = self.points.coords[sl]
        views = self.chunk_params(sl)
        rest = {local: views[full] for local, full in self.split.rest_names.items()}
        _, yb = self.data.batch(b)
        loss_fn, module = self.model.loss_fn, self.rest

        def point_loss(params: dict[str, torch.Tensor], zp: torch.Tensor) -> torch.Tensor:
            return loss_fn(functional_call(module, params, (zp,)), yb)

        if self.vectorized:  # every point's first-layer output at once
            z0, zd = maps[0].reshape(1, -1), maps[1:].reshape(2, -1)
            z = torch.addmm(z0, coords, zd).view(coords.shape[0], *maps.shape[1:])
            return map_points(point_loss, (rest, z), vectorized=True)
        # One point at a time, each first-layer output built just before it is used (a chunk of
        # points then reads this batch's maps while they are still in cache), into buffers.
        losses = []
        for k, (a, b_) in enumerate(coords.tolist()):
            zp = self._first_output(maps, a, b_)
            losses.append(point_loss({name: v[k] for name, v in rest.items()}, zp))
        return torch.stack(losses)

    def _first_output(self, maps: torch.Tensor, a: float, b: float) -> torch.Tensor:
        """The first layer's output at the point (a, b), max-pooled when the maps are cut into
        the pooling's windows: one window position at a time, into a running maximum."""
        if self.window is None:
            z = self._buffer(0, maps[0])
            return torch.add(maps[0], maps[1], alpha=a, out=z).add_(maps[2], alpha=b)
        pooled, part = self._buffer(0, maps[0, 0]), self._buffer(1, maps[0, 0])
        for q in range(maps.shape[1]):
            z = pooled if q == 0 else part
            torch.add(maps[0, q], maps[1, q], alpha=a, out=z).add_(maps[2, q], alpha=b)
            if q:
                torch.maximum(pooled, part, out=pooled)
        return pooled

    def _buffer(self, i: int, like: torch.Tensor) -> torch.Tensor:
        """Buffer ``i``, shaped like ``like``, reused from point to point."""
        buf = self._z.get(i)
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = self._z[i] = torch.empty_like(like)
        return buf
