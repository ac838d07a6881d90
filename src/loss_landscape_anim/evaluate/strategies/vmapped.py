"""Every point of a chunk in one vectorised forward pass (``torch.vmap`` over the weights).

Not chosen automatically for convolutions on the CPU: under vmap a convolution with per-point
weights becomes a grouped convolution, slower there than one plain convolution per point."""

from __future__ import annotations

from .per_point import PerPoint

__all__ = ["Vmapped"]


class Vmapped(PerPoint):
    """The per-point loss mapped over the chunk with ``torch.vmap``."""

    name = "vmap"
    vectorized = True
