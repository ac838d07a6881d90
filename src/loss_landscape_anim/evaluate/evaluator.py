"""``LossEvaluator``: the mean loss of one architecture at many weight vectors.

It is built on a :class:`~.preparation.Preparation` (the model copy and the evaluation data,
shared with the other evaluators of a run), sizes data batches and chunks of points to a memory
budget, and chooses once how a chunk is evaluated (a strategy from the table of
:mod:`.strategies`); the schedule (:mod:`.schedule`) runs the chunks. The loss grid, the path
losses, the line and the other analyses are thin users of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import NumThreads
from .._validate import check_choice
from .budgets import (
    ACTIVATION_OVERHEAD,
    DEFAULT_CACHE_BUDGET,
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_WEIGHTS_BUDGET,
    MIN_SERIAL_BATCH,
    SERIAL_CHUNK_POINTS,
    SERIAL_CPU_MEMORY_BUDGET,
    budget_for,
)
from .checkpoint import GridCheckpoint
from .functional import compute_dtype
from .points import Points
from .precision import precision_scope, warn_if_emulated
from .preparation import Evaluator, Preparation
from .schedule import chunk_slices, collect, loss_job
from .strategies import STRATEGIES, Setting, Strategy, choose_strategy
from .strategies.base import map_points
from .strategies.bn_recompute import DEFAULT_BN_EXAMPLES, BNRecompute

__all__ = ["BN_MODES", "LossEvaluator"]

logger = logging.getLogger(__name__)

#: How BatchNorm statistics are taken at each point (see ``bn``).
BN_MODES = ("eval", "recompute")


class LossEvaluator(Evaluator):
    """Mean loss of ``model``'s architecture at many weight vectors, on data prepared once.

    Args:
        model: supplies the architecture, buffers and ``loss_fn``; evaluated in eval mode on a
            private copy, with the weights of each point passed in. Or a
            :class:`~.preparation.Preparation` (or another evaluator, whose preparation is
            shared): the model and data are then not copied or read again, and ``data`` and the
            preparation's options (``device``, ``n_examples``, ``num_threads``,
            ``distributed``, ``stream``, ``subset_seed``) are not given.
        data: the evaluation data (a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``).
        device: where to compute; default CPU.
        n_examples: use the first ``n_examples`` examples only.
        chunk_size: points per chunk; default: as many as ``memory_budget`` allows.
        memory_budget: bytes of activations one chunk may use (default by device type, and
            :data:`~.budgets.SERIAL_CPU_MEMORY_BUDGET` for points evaluated one at a time on the
            CPU).
        num_threads: CPU threads (restored afterwards): a count, ``"auto"`` (one thread when a
            forward pass over one data batch touches less than ``SMALL_WORK_BYTES``) or None
            (torch's setting).
        strategy: how a chunk of plane points is evaluated: ``"auto"`` (the fastest that
            applies), ``"relu_regions"``, ``"linear_chain"``, ``"first_layer"``, ``"vmap"`` or
            ``"per_point"`` (see :mod:`.strategies`). Arbitrary weight vectors use ``"vmap"`` or
            ``"per_point"``.
        distributed: share the work between the ranks of the initialised ``torch.distributed``
            process group (None: when there is one; see :mod:`.ranks`); every rank gets every
            value. With no ``device``, each rank computes on ``cuda:LOCAL_RANK`` where there are
            GPUs.
        bn: BatchNorm statistics: ``"eval"`` (the model's running statistics, at every point) or
            ``"recompute"`` (re-estimated at each point from the first
            :data:`~.strategies.bn_recompute.DEFAULT_BN_EXAMPLES` examples, one point at a time;
            see :mod:`.strategies.bn_recompute`).
        precision: None (the model's dtype), or ``"bf16"`` / ``"fp16"`` (GPUs only) to run the
            products of a float32 model under autocast in that dtype (see :mod:`.precision`);
            recorded as :attr:`precision`.
        stream: read the data from their dataset for every chunk of points instead of holding
            them in memory (None: for a dataset that is not a ``TensorDataset`` and is larger
            than :data:`~.streamed.DEFAULT_STREAM_BYTES`). Streamed, ``n_examples`` takes a subset
            chosen once from ``subset_seed`` rather than the first examples.
    """

    def __init__(
        self,
        model: nn.Module | Preparation | Any,
        data: Any = None,
        *,
        device: str | torch.device | None = None,
        n_examples: int | None = None,
        chunk_size: int | None = None,
        memory_budget: int | None = None,
        num_threads: NumThreads = None,
        strategy: str = "auto",
        distributed: bool | None = None,
        stream: bool | None = None,
        subset_seed: int = 0,
        bn: str = "eval",
        precision: str | None = None,
    ):
        strategy = check_choice(strategy, "strategy", ("auto", *STRATEGIES))
        self.bn = check_choice(bn, "bn", BN_MODES)
        if self.bn == "recompute" and strategy not in ("auto", "per_point"):
            raise ValueError(
                f"bn='recompute' evaluates one point at a time: use strategy='auto' or "
                f"'per_point', not {strategy!r}"
            )
        options = {
            "device": device,
            "n_examples": n_examples,
            "num_threads": num_threads,
            "distributed": distributed,
            "stream": stream,
            "subset_seed": subset_seed,
        }
        super().__init__(
            model,
            data,
            options,
            chunk_size=chunk_size,
            memory_budget=memory_budget,
            precision=precision,
        )
        prep = self.preparation
        warn_if_emulated(self.device, self.autocast_dtype)
        self.per_example = prep.example_bytes * ACTIVATION_OVERHEAD
        self.vectorized = self._vectorized(memory_budget)
        serial_cpu = self.device.type == "cpu" and not self.vectorized
        if memory_budget is None:
            default = budget_for(DEFAULT_MEMORY_BUDGET, self.device)
            memory_budget = SERIAL_CPU_MEMORY_BUDGET if serial_cpu else default
        self.memory_budget = int(memory_budget)
        batch = self.memory_budget // max(self.per_example, 1)
        if serial_cpu:
            batch = max(batch, MIN_SERIAL_BATCH)
        self.data = prep.data.with_batch_size(batch)
        setting = Setting(
            model=self.model,
            data=self.data,
            split=prep.split,
            vectorized=self.vectorized,
            cache_bytes=budget_for(DEFAULT_CACHE_BUDGET, self.device),
            bn_examples=DEFAULT_BN_EXAMPLES,
            probe_vmap=lambda: prep.vmap_works,
        )
        if self.bn == "recompute":
            self.plane_strategy = self.weight_strategy = choose_strategy(
                "bn_recompute", setting, plane=True
            )
        else:
            self.plane_strategy = choose_strategy(strategy, setting, plane=True)
            self.weight_strategy = choose_strategy(strategy, setting, plane=False)

    @property
    def precision(self) -> str:
        """The dtype products run in: the ``precision`` asked for, else here and now (the
        autocast dtype under the caller's autocast)."""
        dtype = self.autocast_dtype or compute_dtype(self.device, self.model.dtype)
        return str(dtype).removeprefix("torch.")

    def plane_losses(
        self,
        origin: np.ndarray,
        directions: np.ndarray,
        coords: np.ndarray,
        *,
        progress: bool = False,
        desc: str = "",
        checkpoint: str | os.PathLike | None = None,
        job: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Mean loss (K,) float64 at the plane points ``origin + coords @ directions``, with
        ``origin`` (P,), ``directions`` (2, P) and ``coords`` (K, 2).

        With ``checkpoint`` (a file path), finished chunks are saved there and a rerun computes
        only the missing ones; ``job`` adds to what identifies the job in the file (the points,
        the data and the model are always part of it)."""
        points = self.preparation.plane_points(origin, directions, coords)
        store = None
        if checkpoint is not None:
            identity = {
                "points": points.fingerprint(),
                **self.identity(),
                "probe": self.preparation.probe(points),
                **(job or {}),
            }
            writer = self.ranks is None or self.ranks.rank == 0
            store = GridCheckpoint(checkpoint, identity, len(points), writer=writer)
        return self._run(self.plane_strategy, points, progress, desc, store, job)

    def weight_losses(
        self, weights: np.ndarray, *, progress: bool = False, desc: str = ""
    ) -> np.ndarray:
        """Mean loss (K,) float64 at arbitrary flat weight vectors ``weights`` (K, P) (the same
        on every rank of a distributed job)."""
        points = self.preparation.weight_points(weights)
        return self._run(self.weight_strategy, points, progress, desc)

    def weight_accuracies(self, weights: np.ndarray) -> np.ndarray:
        """Accuracy (K,) float64 at flat weight vectors ``weights`` (K, P): the share of examples
        whose argmax prediction is the label (of label tokens, for a token loss), in chunks of
        points like the loss (with ``bn="recompute"``, with each point's own BatchNorm
        statistics). NaN for a model that does not output class logits for integer labels."""
        points = self.preparation.weight_points(weights)
        n = len(points)
        if not self.model.is_classifier(self.data.X, self.data.y):
            return np.full(n, np.nan)
        correct = np.zeros(n, dtype=np.int64)
        model = self.model
        # with bn="recompute", each point is normalised by statistics of its own weights
        recompute = self.weight_strategy if isinstance(self.weight_strategy, BNRecompute) else None
        with torch.no_grad(), self._scope():
            for sl in chunk_slices(n, self.chunk_points(n, self.weight_strategy)) if n else []:
                params = model.params(points.weights(sl))
                stats = recompute.statistics_of(params) if recompute is not None else None
                for b in range(self.data.n_batches):
                    xb, yb = self.data.batch(b)

                    def point_correct(p: dict[str, torch.Tensor]) -> torch.Tensor:
                        return model.correct(p, xb, yb)  # noqa: B023 (used at once)

                    if stats is not None:
                        counts = torch.stack(
                            [
                                point_correct({**{k: v[i] for k, v in params.items()}, **s})
                                for i, s in enumerate(stats)
                            ]
                        )
                    else:
                        counts = map_points(point_correct, (params,), self.vectorized)
                    correct[sl] += counts.cpu().numpy().astype(np.int64)
        return correct / self.data.total_weight

    def chunk_points(self, n_points: int, strategy: Strategy | None = None) -> int:
        """Points per chunk for a job of ``n_points`` points evaluated by ``strategy`` (default:
        the plane strategy)."""
        if self.chunk_size is not None:
            return min(self.chunk_size, n_points)
        chunk = self.memory_budget // max(self.per_example * self.data.batch_size, 1)
        strategy = strategy or self.plane_strategy
        if strategy.serial:  # a chunk then holds one point's activations at a time
            chunk = max(chunk, SERIAL_CHUNK_POINTS)
        # and the weight vectors of all its points (a large model's are large)
        point_bytes = self.model.layout.n_params * self.model.dtype.itemsize
        chunk = min(chunk, budget_for(DEFAULT_WEIGHTS_BUDGET, self.device) // point_bytes)
        if strategy.chunk_points is not None:  # the strategy sizes its own chunks
            chunk = strategy.chunk_points
        return max(1, min(chunk, n_points))

    def identity(self) -> dict[str, Any]:
        """What the values depend on besides the points, as JSON values: the model's class,
        layout and buffers, the evaluation data, the dtype and precision."""
        return {**self.preparation.identity(), "precision": self.precision, "bn": self.bn}

    def _run(
        self,
        strategy: Strategy,
        points: Points,
        progress: bool,
        desc: str,
        checkpoint: GridCheckpoint | None = None,
        job: dict[str, Any] | None = None,
    ) -> np.ndarray:
        n = len(points)
        if n == 0:
            return np.empty(0, dtype=np.float64)

        def start() -> None:  # after a checkpoint of another job was refused with what differs
            self.preparation.check_size(points.weights(slice(0, 1)).shape[-1], "the points")
            strategy.start(points)

        with torch.no_grad(), self._scope():
            values = collect(
                loss_job(strategy, self.data),
                n,
                self.chunk_points(n, strategy),
                start=start,
                progress=progress,
                desc=desc,
                checkpoint=checkpoint,
                ranks=self.ranks,
                job_arguments={**(job or {}), "strategy": strategy.name},
            )
        return values[:, 0]

    def _scope(self) -> contextlib.ExitStack:
        """Threads and precision while the block computes."""
        stack = contextlib.ExitStack()
        stack.enter_context(self.preparation.threads(self.per_example * self.data.batch_size))
        stack.enter_context(precision_scope(self.device, self.autocast_dtype))
        return stack

    def _vectorized(self, memory_budget: int | None) -> bool:
        """Whether points are mapped with ``torch.vmap``: not for a model or loss that vmap
        cannot run, nor for convolutions (vmap makes them grouped convolutions) on the CPU, where
        they are slower than one per point, nor when one point's activations over all the data
        fill a chunk's memory budget: vmap would then batch no points (on an H200 it ran
        ResNet-18 no faster than a per-point loop), nor on the CPU when a chunk would hold fewer
        points than :data:`~.budgets.SERIAL_CHUNK_POINTS`: vmap ran TinyGPT on 256 sequences at
        half the speed of one point at a time, and on 32 sequences, 8 points a chunk, at 0.85
        times (its per-point weights turn every linear layer into a batched product, and every
        layer norm into three passes)."""
        prep = self.preparation
        conv = prep.has_conv(after_split=True)
        if conv and self.device.type == "cpu":
            return False
        budget = memory_budget or budget_for(DEFAULT_MEMORY_BUDGET, self.device)
        # points a chunk would hold with all the data in one batch: on the CPU, fewer than a
        # serial chunk's do not pay for vmap's batched products
        least = SERIAL_CHUNK_POINTS if self.device.type == "cpu" else 1
        if self.per_example * prep.n_examples * least > budget:
            return False
        if not prep.vmap_works:
            logger.info("torch.vmap cannot run this model or loss; evaluating one point at a time")
            return False
        return True
