"""Hoisted first layer: the first layer (linear in its weights) is evaluated 3 times per data batch
for a whole job; each point's first-layer output is combined from those, and only the rest of the
network runs per point (vectorised, or one point at a time for convolutions on the CPU), in the
faster equivalent form of :mod:`.faster_layers`."""

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
        self._z: torch.Tensor | None = None
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
        z0, zd = maps[0].reshape(1, -1), maps[1:].reshape(2, -1)
        views = self.chunk_params(sl)
        rest = {local: views[full] for local, full in self.split.rest_names.items()}
        _, yb = self.data.batch(b)
        loss_fn, module, shape = self.model.loss_fn, self.rest, maps.shape[1:]

        def point_loss(params: dict[str, torch.Tensor], zp: torch.Tensor) -> torch.Tensor:
            return loss_fn(functional_call(module, params, (zp,)), yb)

        if self.vectorized:  # every point's first-layer output at once
            z = torch.addmm(z0, coords, zd).view(coords.shape[0], *shape)
            return map_points(point_loss, (rest, z), vectorized=True)
        # One point at a time, each first-layer output built just before it is used (a chunk of
        # points then reads this batch's maps while they are still in cache), into one buffer.
        z = self._buffer(maps[0])
        losses = []
        for k, (a, b_) in enumerate(coords.tolist()):
            torch.add(maps[0], maps[1], alpha=a, out=z).add_(maps[2], alpha=b_)
            zp = z if self.window is None else z.amax(dim=0)  # the first max pooling
            losses.append(point_loss({name: v[k] for name, v in rest.items()}, zp))
        return torch.stack(losses)

    def _buffer(self, like: torch.Tensor) -> torch.Tensor:
        """A first-layer output buffer shaped like ``like``, reused from point to point."""
        if self._z is None or self._z.shape != like.shape or self._z.dtype != like.dtype:
            self._z = torch.empty_like(like)
        return self._z
