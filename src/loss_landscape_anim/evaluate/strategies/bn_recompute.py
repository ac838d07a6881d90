"""BatchNorm statistics re-estimated at every point (``bn="recompute"``).

In eval mode, BatchNorm normalises with the running statistics that training accumulated near the
trained weights. At a point of the plane far from them the activations have other means and
variances, so those statistics mis-normalise it. This strategy gives each point statistics of its
own: the mean and variance of every BatchNorm layer's inputs over the first ``n_examples`` examples
of the evaluation data as given (a causal language model's whole sequences, before the next-token
shift and the trimming the loss uses: what training-mode BatchNorm sees), with that point's
weights, from one training-mode forward pass over those examples as one batch (BatchNorm layers in
training mode, every other layer in eval mode); the loss is then evaluated in eval mode with those
statistics. The statistics pass takes its examples in one batch whatever the memory budget cuts
the evaluation data into, so they are the exact statistics of those examples, the same for every
budget (averages of per-batch statistics would change with the batches). One point at a time: it
costs an extra forward pass over those examples per point.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call

from ...data import Inputs
from ...data.batches import as_call
from ..data import EvalData
from ..points import Points
from ..probes import has_batch_norm
from .base import Setting, Strategy

__all__ = ["DEFAULT_BN_EXAMPLES", "BNRecompute", "statistics_inputs"]

#: Examples the statistics of each point are estimated from (the first ones of the data).
DEFAULT_BN_EXAMPLES = 1024


class BNRecompute(Strategy):
    """The per-point loss with BatchNorm statistics estimated at each point (``bn="recompute"``;
    not a ``strategy=`` of its own)."""

    name = "bn_recompute"
    auto = False
    mapping = False

    def __init__(self, setting: Setting):
        super().__init__(setting)
        self.estimator = copy.deepcopy(setting.model.module).eval()
        for m in self.estimator.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train()
                m.momentum = None  # a cumulative average over the batches
        self._inputs: Inputs | None = None
        self._stats_chunk: slice | None = None
        self._buffers: list[dict[str, torch.Tensor]] = []

    @classmethod
    def refusal(cls, setting: Setting) -> str | None:
        if not has_batch_norm(setting.model.module):
            return (
                f"bn='recompute' re-estimates BatchNorm statistics but the "
                f"{type(setting.model.module).__name__} has no BatchNorm layer"
            )
        if setting.data.n_examples < 2:
            return (
                "bn='recompute' estimates BatchNorm statistics from at least 2 examples but the "
                f"evaluation data hold {setting.data.n_examples}"
            )
        return None

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
            self.model.loss_fn(self.model.outputs({**_point(params, k), **buffers}, xb), yb)
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
        if self._inputs is None:
            self._inputs = statistics_inputs(self.data, self.setting.bn_examples)
        args, kwargs = as_call(self._inputs)
        functional_call(self.estimator, {**params, **buffers}, args, kwargs)  # updates buffers
        return buffers


def statistics_inputs(data: EvalData, examples: int) -> Inputs:
    """The inputs of the first ``examples`` examples of ``data`` as given (the whole sequences of
    a causal language model, before the next-token shift and the trimming of the evaluation:
    what training-mode BatchNorm sees), as one batch whatever ``data``'s own batches are."""
    return data.given_head(min(examples, data.n_examples))


def _point(params: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    return {name: v[k] for name, v in params.items()}
