"""Every point of a chunk in one vectorised forward pass (``torch.vmap`` over the weights).

Not chosen automatically for convolutions on the CPU: under vmap a convolution with per-point
weights becomes a grouped convolution, slower there than one plain convolution per point."""

from __future__ import annotations

from .base import Setting
from .per_point import PerPoint

__all__ = ["Vmapped"]


class Vmapped(PerPoint):
    """The per-point loss mapped over the chunk with ``torch.vmap``."""

    name = "vmap"
    mapping = True

    @classmethod
    def refusal(cls, setting: Setting) -> str | None:
        if not setting.vmap_works:
            return "strategy='vmap' was asked for but torch.vmap cannot run this model"
        return None

    @classmethod
    def preferred(cls, setting: Setting) -> bool:
        return setting.vectorized
