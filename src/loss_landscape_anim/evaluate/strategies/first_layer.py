"""Hoisted first layer: the first layer (linear in its weights) is evaluated 3 times per data batch
for a whole job; each point's first-layer output is combined from those, and only the rest of the
network runs per point (vectorised, or one point at a time for convolutions on the CPU)."""

from __future__ import annotations

import torch
from torch.func import functional_call

from ..points import PlanePoints
from .base import map_points
from .first_maps import HoistedFirstLayer

__all__ = ["FirstLayer"]


class FirstLayer(HoistedFirstLayer):
    """Points of a plane through a sequential model cut after its first layer."""

    name = "first_layer"

    def batch_losses(self, sl: slice, b: int) -> torch.Tensor:
        assert isinstance(self.points, PlanePoints) and self.first_maps is not None
        maps = self.first_maps.maps(b)
        coords = self.points.coords[sl]
        z0, zd = maps[0], maps[1:]
        z = torch.addmm(z0.reshape(1, -1), coords, zd.reshape(2, -1))
        z = z.view(coords.shape[0], *z0.shape)
        views = self.model.params(self.points.weights(sl))
        rest = {local: views[full] for local, full in self.split.rest_names.items()}
        _, yb = self.data.batch(b)
        loss_fn, module = self.model.loss_fn, self.split.rest

        def point_loss(params: dict[str, torch.Tensor], zp: torch.Tensor) -> torch.Tensor:
            return loss_fn(functional_call(module, params, (zp,)), yb)

        return map_points(point_loss, (rest, z), self.vectorized)
