"""The weight vectors to evaluate: points of a plane, or arbitrary flat weights."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

__all__ = ["PlanePoints", "Points", "WeightPoints"]


@dataclass(frozen=True)
class WeightPoints:
    """K arbitrary flat weight vectors ``W`` (K, P) in the model's dtype."""

    W: torch.Tensor

    def __len__(self) -> int:
        return int(self.W.shape[0])

    def weights(self, sl: slice) -> torch.Tensor:
        return self.W[sl]

    @classmethod
    def of(cls, weights: np.ndarray, device: torch.device, dtype: torch.dtype) -> WeightPoints:
        return cls(torch.as_tensor(np.asarray(weights), dtype=dtype, device=device))


@dataclass(frozen=True)
class PlanePoints:
    """K points ``origin + coords @ directions`` of a plane.

    Weights are built in float64 and then cast to the model's dtype: far from the origin (a
    diverged path), float32 would lose the small differences between nearby points to rounding.
    ``origin`` (P,), ``directions`` (2, P) and ``coords`` (K, 2) are the model-dtype copies the
    strategies that exploit the plane's structure use, made when first used (for a large model,
    whose points are evaluated one by one, they would be 1.5 GB of float32 for GPT-2 small)."""

    origin64: torch.Tensor
    directions64: torch.Tensor
    coords64: torch.Tensor
    dtype: torch.dtype

    @cached_property
    def origin(self) -> torch.Tensor:
        return self.origin64.to(self.dtype)

    @cached_property
    def directions(self) -> torch.Tensor:
        return self.directions64.to(self.dtype)

    @cached_property
    def coords(self) -> torch.Tensor:
        return self.coords64.to(self.dtype)

    def fingerprint(self) -> str:
        """What identifies the points in a checkpoint: a hash of the origin, directions and
        coordinates (float64), computed when asked (for a large model it reads gigabytes)."""
        from .checkpoint import array_fingerprint

        arrays = (self.origin64, self.directions64, self.coords64)
        return array_fingerprint(*(a.detach().cpu().numpy() for a in arrays))

    def __len__(self) -> int:
        return int(self.coords64.shape[0])

    @classmethod
    def of(
        cls,
        origin: np.ndarray,
        directions: np.ndarray,
        coords: np.ndarray,
        device: torch.device,
        dtype: torch.dtype,
    ) -> PlanePoints:
        def as64(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a), dtype=torch.float64, device=device)

        return cls(as64(origin), as64(directions), as64(coords).reshape(-1, 2), dtype)

    def weights(self, sl: slice) -> torch.Tensor:
        """The points ``sl`` as flat weights (k, P) in the model's dtype, built in float64 a
        block of rows (and for a large model of columns) at a time (a large model's float64
        rows would double the memory)."""
        coords = self.coords64[sl]
        size = self.origin64.shape[0]
        out = torch.empty((coords.shape[0], size), dtype=self.dtype, device=self.origin64.device)
        rows = max(1, _FLOAT64_BLOCK // max(size, 1))
        cols = max(1, _FLOAT64_BLOCK // rows)
        for lo in range(0, coords.shape[0], rows):
            for a in range(0, size, cols):
                block = torch.addmm(
                    self.origin64[a : a + cols],
                    coords[lo : lo + rows],
                    self.directions64[:, a : a + cols],
                )
                out[lo : lo + rows, a : a + cols] = block
        return out


#: Elements of a float64 block of weight rows built at once (32 MiB).
_FLOAT64_BLOCK = 2**22


Points = WeightPoints | PlanePoints
