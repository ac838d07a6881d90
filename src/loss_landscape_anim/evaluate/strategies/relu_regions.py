"""One hidden ReLU layer (``Linear -> ReLU -> Linear``, the default MLP), evaluated by activation
regions.

On a plane, a hidden unit's input for example ``n`` is affine in the coordinates:
``h(a, b) = p0 + a p1 + b p2`` (the hoisted first-layer maps, see :mod:`.first_maps`). Over the
small box of the plane that a chunk of neighbouring points covers, most units are either on
(``h > 0`` at every corner of the box) or off (``h <= 0`` at every corner) for a given example.

- An *off* unit contributes nothing.
- An *on* unit contributes ``W(a, b) h(a, b)`` with ``W(a, b) = W0 + a E0 + b E1``: a quadratic
  polynomial in ``(a, b)``. Summed over the on units, its 6 coefficients per (class, example)
  take a few matrix products per chunk, whatever the number of points, and each point then costs
  6 multiply-adds per class and example.
- The few *mixed* units (their sign changes inside the box) are evaluated point by point, sparsely.

The result is the network's output up to rounding (a unit whose input is within rounding of zero
at a box corner may be counted as on with a value of the order of the rounding). On the default
spirals job, about 2% of (unit, example) pairs are mixed in a chunk of 10 neighbouring points.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..points import PlanePoints, Points
from ..probes import SequentialSplit
from .base import Setting
from .linear_chain import LinearChain

__all__ = ["ReluRegions", "is_one_hidden_relu"]

#: Points per box: a box of 10 x 10 grid points leaves about 4% of (unit, example) pairs mixed on
#: the default job, and its matrix products are shared by 100 points.
BOX_POINTS = 100
#: Boxes per chunk of points.
CHUNK_BOXES = 10
#: Bytes a box's per-point tensors may take (the outputs of its points for a data batch, and the
#: mixed units' contributions): fewer points per box for many classes or large batches.
BOX_BYTES = 32 * 2**20


def is_one_hidden_relu(split: SequentialSplit) -> bool:
    """Whether the model cut by ``split`` is ``Linear -> ReLU -> Linear``."""
    chain = split.chain
    return (
        chain is not None
        and len(chain) == 2
        and type(chain[0][0]) is nn.ReLU
        and chain[0][1] is None
        and chain[1][1] is not None
    )


def boxes(coords: torch.Tensor, scale: torch.Tensor, box_points: int) -> list[torch.Tensor]:
    """The indices of ``coords`` (K, 2) in groups of at most ``box_points`` neighbouring points:
    strips along the second axis, cut along the first into boxes about as long as wide in units
    of ``scale`` (2,)."""
    k = coords.shape[0]
    if k <= box_points:
        return [torch.arange(k, device=coords.device)]
    u = coords / scale
    extent = (u.amax(dim=0) - u.amin(dim=0)).tolist()
    n_boxes = -(-k // box_points)
    side = math.sqrt(extent[0] * extent[1] / n_boxes) or max(extent) / n_boxes or 1.0
    strips = min(max(round(extent[1] / side), 1), n_boxes)
    by_b = torch.argsort(u[:, 1], stable=True)
    per_strip = -(-k // strips)
    found = []
    for lo in range(0, k, per_strip):
        strip = by_b[lo : lo + per_strip]
        strip = strip[torch.argsort(u[strip, 0], stable=True)]
        found.extend(strip.split(box_points))
    return found


class ReluRegions(LinearChain):
    """Points of a plane through ``Linear -> ReLU -> Linear`` models, by activation regions."""

    name = "relu_regions"
    chunk_points = BOX_POINTS * CHUNK_BOXES

    @classmethod
    def refusal(cls, setting: Setting) -> str | None:
        if setting.split is not None and not is_one_hidden_relu(setting.split):
            return (
                "strategy='relu_regions' needs a Linear -> ReLU -> Linear model; use "
                "'linear_chain', 'first_layer' or 'auto'"
            )
        return super().refusal(setting)

    def prepare(self) -> None:
        super().prepare()
        self._maps: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._scale = torch.ones(2)

    def start(self, points: Points) -> None:
        super().start(points)
        assert isinstance(points, PlanePoints)
        self._maps = {}
        extent = points.coords.amax(dim=0) - points.coords.amin(dim=0)
        self._scale = torch.where(extent > 0, extent, torch.ones_like(extent))

    def batch_losses(self, sl: slice, b: int) -> torch.Tensor:
        if self.manual_precision:  # under autocast: the chain's reduced-precision products
            return super().batch_losses(sl, b)
        assert isinstance(self.points, PlanePoints)
        coords = self.points.coords[sl]
        _, yb = self.data.batch(b)
        losses = torch.empty(coords.shape[0], dtype=coords.dtype, device=coords.device)
        for box in boxes(coords, self._scale, self.box_points(yb.shape[0])):
            losses[box] = self._box_loss(self._outputs(b, coords[box]), yb)
        return losses

    def box_points(self, n: int) -> int:
        """Points per box for a data batch of ``n`` examples: :data:`BOX_POINTS`, or fewer when
        the box's outputs (n, classes, points) and their temporaries would pass
        :data:`BOX_BYTES`."""
        stacked = self._output_layer()[0]
        per_point = 3 * n * (stacked.shape[0] // 3) * stacked.element_size()
        return max(1, min(BOX_POINTS, BOX_BYTES // max(per_point, 1)))

    def _output_layer(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The last Linear layer's ``([W0; E0; E1], b0, [e0; e1])`` (see :class:`LinearChain`)."""
        step = self.steps[1]
        assert step is not None
        return step

    def _batch_maps(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``b``'s hidden-unit inputs: (hidden, 3, n) as the first layer gives them, and
        (3, hidden * n) with the absolute values of the directions' (5, hidden * n)."""
        found = self._maps.get(b)
        if found is None:
            assert self.first_maps is not None
            maps = self.first_maps.maps(b)
            if not self.first_maps.keep_all:
                self._maps.clear()
            flat = maps.transpose(0, 1).reshape(3, -1)
            found = self._maps[b] = (maps, torch.cat([flat, flat[1:].abs()]))
        return found

    def _outputs(self, b: int, coords: torch.Tensor) -> torch.Tensor:
        """The network's outputs (n, classes, K) at the points ``coords`` (K, 2) of one box."""
        stacked, bias0, bias_dirs = self._output_layer()
        classes, hidden = stacked.shape[0] // 3, stacked.shape[1]
        maps, flat = self._batch_maps(b)
        n = maps.shape[2]
        lo, hi = coords.amin(dim=0), coords.amax(dim=0)
        # A unit's input over the box: centre +- radius.
        mid = torch.cat([torch.ones_like(lo[:1]), (lo + hi) / 2])
        centre = torch.mv(flat[:3].T, mid)
        radius = torch.mv(flat[3:].T, (hi - lo) / 2)
        on = centre > radius  # (hidden * n)
        mixed = (centre > -radius).logical_and_(~on)

        # On units: [W0; E0; E1] times [p0, p1, p2] restricted to them, then the polynomial's
        # coefficients of 1, a, b, a^2, ab, b^2.
        masked = maps * on.view(hidden, 1, n)
        m = torch.mm(stacked, masked.view(hidden, 3 * n)).view(3, classes, 3, n)
        poly = torch.stack(
            [
                m[0, :, 0],
                m[0, :, 1] + m[1, :, 0],
                m[0, :, 2] + m[2, :, 0],
                m[1, :, 1],
                m[1, :, 2] + m[2, :, 1],
                m[2, :, 2],
            ],
            dim=1,
        )  # (classes, 6, n)
        if bias0 is not None and bias_dirs is not None:
            poly[:, 0] += bias0[:, None]
            poly[:, 1:3] += bias_dirs.T[:, :, None]
        a, b_ = coords[:, 0], coords[:, 1]
        terms = torch.stack([torch.ones_like(a), a, b_, a * a, a * b_, b_ * b_])  # (6, K)
        out = torch.mm(poly.permute(2, 0, 1).reshape(n * classes, 6), terms)
        out = out.view(n, classes, -1)

        # Mixed units, point by point: relu(p0 + a p1 + b p2) times the unit's outgoing weights.
        (pair,) = mixed.nonzero(as_tuple=True)  # unit * n + example
        if pair.numel():
            coef = torch.cat([torch.ones_like(a[None]), coords.T])  # (3, K)
            per_unit = stacked.view(3, classes, hidden).permute(2, 1, 0)  # (hidden, classes, 3)
            weights = torch.matmul(per_unit, coef)  # (hidden, classes, K)
            rows = max(1, BOX_BYTES // (weights[0].numel() * weights.element_size()))
            for part in pair.split(rows):  # in pieces of at most BOX_BYTES
                pre = torch.mm(flat[:3].index_select(1, part).T, coef).relu_()  # (M, K)
                contrib = weights.index_select(0, part // n).mul_(pre[:, None, :])
                out.index_add_(0, part % n, contrib)
        return out

    def _box_loss(self, out: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Mean loss per point of the outputs ``out`` (n, classes, K)."""
        if not (self.model.default_cross_entropy and yb.ndim == 1 and not yb.is_floating_point()):
            return self._head_loss(out.permute(1, 2, 0), yb)
        n, classes, k = out.shape
        top = out.amax(dim=1)
        lse = (out - top[:, None]).exp_().sum(dim=1).log_().add_(top)
        picked = out.view(n * classes, k).index_select(0, self._label_rows(yb, classes))
        return lse.sub_(picked).mean(dim=0)

    def _label_rows(self, yb: torch.Tensor, classes: int) -> torch.Tensor:
        """Rows of ``out.view(n * classes, K)`` holding each example's label logit."""
        return torch.arange(yb.shape[0], device=yb.device) * classes + yb
