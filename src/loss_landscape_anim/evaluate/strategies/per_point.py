"""The reference strategy: one functional forward pass per point. Works for every model and loss."""

from __future__ import annotations

import torch

from .base import Strategy, map_points

__all__ = ["PerPoint"]


class PerPoint(Strategy):
    """Each point's loss from its own forward pass over the batch."""

    name = "per_point"
    mapping = False

    def batch_losses(self, sl: slice, b: int) -> torch.Tensor:
        assert self.points is not None
        xb, yb = self.data.batch(b)
        model = self.model

        def point_loss(params: dict[str, torch.Tensor]) -> torch.Tensor:
            return model.loss(params, xb, yb)

        return map_points(point_loss, (self.chunk_params(sl),), self.vectorized)
