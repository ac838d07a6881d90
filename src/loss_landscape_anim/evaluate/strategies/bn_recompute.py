"""BatchNorm statistics re-estimated at every point (``bn="recompute"``).

In eval mode, BatchNorm normalises with the running statistics that training accumulated near the
trained weights. At a point of the plane far from them the activations have other means and
variances, so those statistics mis-normalise it. This strategy gives each point statistics of its
own: the mean and variance of every BatchNorm layer's inputs over the first ``n_examples`` examples
of the evaluation data, with that point's weights (BatchNorm layers in training mode with a
cumulative average, every other layer in eval mode); the loss is then evaluated in eval mode with
those statistics. One point at a time: it costs an extra forward pass over those examples per
point.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call

from ..data import EvalData
from ..functional import FunctionalModel
from ..points import Points
from .base import Strategy

__all__ = ["DEFAULT_BN_EXAMPLES", "BNRecompute", "has_batch_norm"]

#: Examples the statistics of each point are estimated from (the first ones of the data).
DEFAULT_BN_EXAMPLES = 1024


def has_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


class BNRecompute(Strategy):
    """The per-point loss with BatchNorm statistics estimated at each point."""

    name = "bn_recompute"

    def __init__(self, model: FunctionalModel, data: EvalData, n_examples: int):
        super().__init__(model, data)
        self.estimator = copy.deepcopy(model.module).eval()
        for m in self.estimator.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train()
                m.momentum = None  # a cumulative average over the batches
        self.n_batches = max(1, -(-min(n_examples, data.n_examples) // data.batch_size))
        self.n_batches = min(self.n_batches, data.n_batches)
        self._stats_chunk: slice | None = None
        self._buffers: list[dict[str, torch.Tensor]] = []

    def start(self, points: Points) -> None:
        super().start(points)
        self._stats_chunk = None  # the last job's statistics are not this job's

    def batch_losses(self, sl: slice, b: int) -> torch.Tensor:
        assert self.points is not None
        params = self.chunk_params(sl)
        if sl != self._stats_chunk:
            self._buffers = [self._statistics(_point(params, k)) for k in range(sl.stop - sl.start)]
            self._stats_chunk = sl
        xb, yb = self.data.batch(b)
        losses = [
            self.model.loss_fn(
                functional_call(self.model.module, {**_point(params, k), **buffers}, (xb,)), yb
            )
            for k, buffers in enumerate(self._buffers)
        ]
        return torch.stack(losses)

    def statistics_of(self, params: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """The BatchNorm buffers of each point of ``params`` (named weights (k, ...))."""
        n = next(iter(params.values())).shape[0]
        return [self._statistics(_point(params, k)) for k in range(n)]

    def _statistics(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Fresh BatchNorm buffers estimated with the weights ``params``."""
        buffers = {name: b.clone() for name, b in self.estimator.named_buffers()}
        for name, b in buffers.items():
            if name.endswith("running_mean") or name.endswith("num_batches_tracked"):
                b.zero_()
            elif name.endswith("running_var"):
                b.fill_(1)
        for batch in range(self.n_batches):
            xb, _ = self.data.batch(batch)
            functional_call(self.estimator, {**params, **buffers}, (xb,))  # updates buffers
        return buffers


def _point(params: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    return {name: v[k] for name, v in params.items()}
