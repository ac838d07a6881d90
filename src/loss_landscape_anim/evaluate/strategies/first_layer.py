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
        z0, zd = maps[0].reshape(1, -1), maps[1:].reshape(2, -1)
        views = self.model.params(self.points.weights(sl))
        rest = {local: views[full] for local, full in self.split.rest_names.items()}
        _, yb = self.data.batch(b)
        loss_fn, module, shape = self.model.loss_fn, self.split.rest, maps.shape[1:]

        def point_loss(params: dict[str, torch.Tensor], zp: torch.Tensor) -> torch.Tensor:
            return loss_fn(functional_call(module, params, (zp,)), yb)

        if self.vectorized:  # every point's first-layer output at once
            z = torch.addmm(z0, coords, zd).view(coords.shape[0], *shape)
            return map_points(point_loss, (rest, z), vectorized=True)
        # One point at a time, each first-layer output built just before it is used: a chunk of
        # points then reads this batch's maps while they are still in cache.
        return torch.stack(
            [
                point_loss(
                    {name: v[k] for name, v in rest.items()},
                    torch.addmm(z0, coords[k : k + 1], zd).view(shape),
                )
                for k in range(coords.shape[0])
            ]
        )
