"""``LossEvaluator``: the mean loss of one architecture at many weight vectors.

It prepares the evaluation data once, sizes data batches and chunks of points to a memory budget,
and chooses once how a chunk is evaluated (a strategy from :mod:`.strategies`); the schedule
(:mod:`.schedule`) runs the chunks. The loss grid, the path losses and future analyses are thin
users of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .._runtime import NumThreads, check_num_threads, resolve_device, thread_scope
from .._validate import check_choice, check_optional_positive_int, check_positive_int
from .checkpoint import GridCheckpoint, array_fingerprint
from .data import EvalData
from .functional import FunctionalModel, compute_dtype
from .points import PlanePoints, Points, WeightPoints
from .precision import check_precision, precision_scope, warn_if_emulated
from .schedule import chunk_slices, collect
from .sizing import activation_bytes
from .strategies import STRATEGIES, make_strategy, vmap_works
from .strategies.base import Strategy, map_points
from .strategies.bn_recompute import DEFAULT_BN_EXAMPLES, BNRecompute, has_batch_norm
from .strategies.linear_chain import LinearChain
from .strategies.split import split_first_linear
from .streamed import StreamedData, streamed_source

if TYPE_CHECKING:
    from ..integrations.distributed import ProcessGroupRanks

__all__ = [
    "DEFAULT_CACHE_BUDGET",
    "DEFAULT_MEMORY_BUDGET",
    "SMALL_WORK_BYTES",
    "LossEvaluator",
]

logger = logging.getLogger(__name__)

#: How BatchNorm statistics are taken at each point (see ``bn``).
BN_MODES = ("eval", "recompute")
#: Default bytes of activations one chunk of points may use, by device type. On the CPU small
#: chunks win: their tensors stay in cache and are recycled by the allocator instead of being
#: freshly mapped (page faults) every time; a GPU wants large launches.
DEFAULT_MEMORY_BUDGET = {"cpu": 16 * 2**20, "cuda": 2**30, "mps": 2**30}
#: Default bytes of activations for points evaluated one at a time on the CPU (models with
#: convolutions): one point's activations over one data batch. Larger batches than the vectorised
#: strategies' cut the operations per point (LeNet-5 on 3,000 inputs: 12.1 points/s with 16 MiB,
#: 15.3 with 64 MiB, the best of 4-128 MiB).
SERIAL_CPU_MEMORY_BUDGET = 64 * 2**20
#: Examples per data batch, at least, for points evaluated one at a time on the CPU: a large
#: model's convolutions are inefficient on a few examples (ResNet-18 on 64 CIFAR-shaped inputs:
#: 0.63 points/s in batches of 21, 0.82 in one batch of 64), whatever the memory budget says.
MIN_SERIAL_BATCH = 64
#: Default bytes of first-layer outputs kept for a whole job (all data batches), by device type.
DEFAULT_CACHE_BUDGET = {"cpu": 512 * 2**20, "cuda": 4 * 2**30, "mps": 2**30}
#: Activations are counted this many times over, for temporaries of the backward-free forward.
_ACTIVATION_OVERHEAD = 2
#: With ``num_threads="auto"`` on the CPU, evaluations whose forward pass over one data batch
#: touches fewer activation bytes than this run on one thread: their operations are too short to
#: gain from a thread team, which stalls for a whole scheduler time slice whenever another process
#: holds a core.
SMALL_WORK_BYTES = 8 * 2**20
#: Points per chunk, at least, when points are evaluated one at a time: a data batch's cached
#: first-layer maps are then read by this many points while they are in cache.
SERIAL_CHUNK_POINTS = 8


class LossEvaluator:
    """Mean loss of ``model``'s architecture at many weight vectors, on data prepared once.

    Args:
        model: supplies the architecture, buffers and ``loss_fn``; evaluated in eval mode on a
            private copy, with the weights of each point passed in.
        data: the evaluation data (a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``).
        device: where to compute; default CPU.
        n_examples: use the first ``n_examples`` examples only.
        chunk_size: points per chunk; default: as many as ``memory_budget`` allows.
        memory_budget: bytes of activations one chunk may use (default by device type, and
            :data:`SERIAL_CPU_MEMORY_BUDGET` for points evaluated one at a time on the CPU).
        num_threads: CPU threads (restored afterwards): a count, ``"auto"`` (one thread when a
            forward pass over one data batch touches less than ``SMALL_WORK_BYTES``) or None
            (torch's setting).
        strategy: how a chunk of plane points is evaluated: ``"auto"`` (the fastest that
            applies), ``"linear_chain"``, ``"first_layer"``, ``"vmap"`` or ``"per_point"``.
            Arbitrary weight vectors use ``"vmap"`` or ``"per_point"``.
        distributed: share the work between the ranks of the initialised ``torch.distributed``
            process group (None: when there is one; see
            :mod:`loss_landscape_anim.integrations.distributed`); every rank gets every value.
            With no ``device``, each rank computes on ``cuda:LOCAL_RANK`` where there are GPUs.
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
        model: nn.Module,
        data: Any,
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
        self.ranks = _ranks(distributed)
        if device is None and self.ranks is not None:
            from ..integrations.distributed import rank_device

            device = rank_device()
        self.device = resolve_device(device)
        self.chunk_size = check_optional_positive_int(chunk_size, "chunk_size")
        if memory_budget is not None:
            check_positive_int(memory_budget, "memory_budget")
        self.num_threads = check_num_threads(num_threads)
        strategy = check_choice(strategy, "strategy", ("auto", *STRATEGIES))
        self.bn = check_choice(bn, "bn", BN_MODES)
        if self.bn == "recompute" and strategy not in ("auto", "per_point"):
            raise ValueError(
                f"bn='recompute' evaluates one point at a time: use strategy='auto' or "
                f"'per_point', not {strategy!r}"
            )
        self.model = FunctionalModel(model, self.device)
        self.autocast_dtype = check_precision(precision, self.device, self.model.dtype)
        warn_if_emulated(self.device, self.autocast_dtype)
        data = _prepare(data, self.device, self.model.dtype, n_examples, stream, subset_seed)
        self.model.check(*data.head(2))
        self._data_fingerprint: str | None = None
        if self.ranks is not None:
            self._data_fingerprint = data.fingerprint()
            self.ranks.check_same("evaluation data", self._data_fingerprint)
            for buffer in self.model.module.buffers():
                self.ranks.broadcast_(buffer)
        self.per_example = (
            activation_bytes(self.model.module, data.head(1)[0]) * _ACTIVATION_OVERHEAD
        )
        self.split = split_first_linear(self.model.module, data.head(2)[0])
        self.vectorized = self._vectorized(data, memory_budget)
        serial_cpu = self.device.type == "cpu" and not self.vectorized
        if memory_budget is None:
            memory_budget = SERIAL_CPU_MEMORY_BUDGET if serial_cpu else _default_budget(self.device)
        self.memory_budget = int(memory_budget)
        batch = self.memory_budget // max(self.per_example, 1)
        if serial_cpu:
            batch = max(batch, MIN_SERIAL_BATCH)
        self.data = data.with_batch_size(batch)
        self.small = self.device.type == "cpu" and (
            self.per_example * self.data.batch_size < SMALL_WORK_BYTES
        )
        if self.bn == "recompute":
            if not has_batch_norm(self.model.module):
                raise ValueError(
                    f"bn='recompute' re-estimates BatchNorm statistics but the "
                    f"{type(model).__name__} has no BatchNorm layer"
                )
            recompute: Strategy = BNRecompute(self.model, self.data, DEFAULT_BN_EXAMPLES)
            self.plane_strategy = self.weight_strategy = recompute
        else:
            self.plane_strategy = self._make(strategy, plane=True)
            self.weight_strategy = self._make(strategy, plane=False)

    @property
    def n_examples(self) -> int:
        return self.data.n_examples

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
        if self.ranks is not None:  # rank 0's plane, should the ranks' differ in the last bits
            origin, directions, coords = (
                self.ranks.broadcast_array(np.asarray(a, dtype=np.float64))
                for a in (origin, directions, coords)
            )
        points = PlanePoints.of(origin, directions, coords, self.device, self.model.dtype)
        store = None
        if checkpoint is not None:
            identity = {
                "points": array_fingerprint(origin, directions, coords),
                **self.identity(),
                **(job or {}),
            }
            writer = self.ranks is None or self.ranks.rank == 0
            store = GridCheckpoint(checkpoint, identity, len(points), writer=writer)
        return self._run(self.plane_strategy, points, progress, desc, store)

    def weight_losses(
        self, weights: np.ndarray, *, progress: bool = False, desc: str = ""
    ) -> np.ndarray:
        """Mean loss (K,) float64 at arbitrary flat weight vectors ``weights`` (K, P) (the same
        on every rank of a distributed job)."""
        points = WeightPoints.of(weights, self.device, self.model.dtype)
        return self._run(self.weight_strategy, points, progress, desc)

    def weight_accuracies(self, weights: np.ndarray) -> np.ndarray:
        """Accuracy (K,) float64 at flat weight vectors ``weights`` (K, P): the share of examples
        whose argmax prediction is the label, in chunks of points like the loss (with
        ``bn="recompute"``, with each point's own BatchNorm statistics). NaN for a model that does
        not output class logits for integer labels."""
        points = WeightPoints.of(weights, self.device, self.model.dtype)
        n = len(points)
        if not self.model.is_classifier(self.data.X, self.data.y):
            return np.full(n, np.nan)
        correct = np.zeros(n, dtype=np.int64)
        model = self.model
        # with bn="recompute", each point is normalised by statistics of its own weights
        recompute = self.weight_strategy if isinstance(self.weight_strategy, BNRecompute) else None
        with torch.no_grad(), thread_scope(self.num_threads, small=self.small), self._precision():
            for sl in chunk_slices(n, self.chunk_points(n)) if n else []:
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
        return correct / self.n_examples

    def chunk_points(self, n_points: int) -> int:
        """Points per chunk for a job of ``n_points`` points."""
        if self.chunk_size is not None:
            return min(self.chunk_size, n_points)
        chunk = self.memory_budget // max(self.per_example * self.data.batch_size, 1)
        strategy = self.plane_strategy
        one_at_a_time = not self.vectorized and not isinstance(strategy, LinearChain)
        if one_at_a_time:  # a chunk then holds one point's activations at a time
            chunk = max(chunk, SERIAL_CHUNK_POINTS)
        if strategy.chunk_points is not None:  # the strategy sizes its own chunks
            chunk = strategy.chunk_points
        return max(1, min(chunk, n_points))

    def identity(self) -> dict[str, Any]:
        """What the values depend on besides the points, as JSON values: the model's class,
        layout and buffers, the evaluation data, the dtype and precision."""
        if self._data_fingerprint is None:
            self._data_fingerprint = self.data.fingerprint()
        layout = json.dumps(self.model.layout.to_json()).encode()
        return {
            "model": type(self.model.module).__qualname__,
            "layout": array_fingerprint(np.frombuffer(layout, dtype=np.uint8)),
            "buffers": array_fingerprint(*self.model.module.buffers()),
            "data": self._data_fingerprint,
            "n_examples": self.n_examples,
            "dtype": str(self.model.dtype).removeprefix("torch."),
            "precision": self.precision,
            "bn": self.bn,
        }

    def _run(
        self,
        strategy: Strategy,
        points: Points,
        progress: bool,
        desc: str,
        checkpoint: GridCheckpoint | None = None,
    ) -> np.ndarray:
        n = len(points)
        if n == 0:
            return np.empty(0, dtype=np.float64)
        with torch.no_grad(), thread_scope(self.num_threads, small=self.small), self._precision():
            return collect(
                strategy,
                self.data,
                points,
                self.chunk_points(n),
                progress=progress,
                desc=desc,
                checkpoint=checkpoint,
                ranks=self.ranks,
            )

    def _precision(self) -> contextlib.AbstractContextManager[None]:
        return precision_scope(self.device, self.autocast_dtype)

    def _vectorized(self, data: EvalData, memory_budget: int | None) -> bool:
        """Whether points are mapped with ``torch.vmap``: not for a model or loss that vmap
        cannot run, nor for convolutions (vmap makes them grouped convolutions) on the CPU, where
        they are slower than one per point, or on other devices when one point's activations
        over all the data fill a chunk's memory budget (vmap would then batch no points, and on
        an H200 it ran ResNet-18 no faster than a per-point loop)."""
        mapped = self.split.rest if self.split is not None else self.model.module
        has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in mapped.modules())
        if has_conv and self.device.type == "cpu":
            return False
        budget = memory_budget or _default_budget(self.device)
        if has_conv and self.per_example * data.n_examples >= budget:
            return False
        if not vmap_works(self.model, data):
            logger.info("torch.vmap cannot run this model or loss; evaluating one point at a time")
            return False
        return True

    def _make(self, name: str, *, plane: bool) -> Strategy:
        return make_strategy(
            name,
            self.model,
            self.data,
            plane=plane,
            split=self.split,
            vectorized=self.vectorized,
            cache_bytes=DEFAULT_CACHE_BUDGET.get(self.device.type, 2**28),
        )


def _default_budget(device: torch.device) -> int:
    return DEFAULT_MEMORY_BUDGET.get(device.type, 2**28)


def _ranks(distributed: bool | None) -> ProcessGroupRanks | None:
    """The ranks to share the work with (None: this process alone)."""
    if distributed is False:
        return None
    from ..integrations.distributed import process_group_ranks

    return process_group_ranks(distributed)


def _prepare(
    data: Any,
    device: torch.device,
    dtype: torch.dtype,
    n_examples: int | None,
    stream: bool | None,
    subset_seed: int,
) -> EvalData:
    """The evaluation data: in memory, or streamed from their dataset (see :mod:`.streamed`)."""
    n_examples = check_optional_positive_int(n_examples, "n_examples")
    source = streamed_source(data, stream)
    if source is None:
        return EvalData.prepare(data, device, dtype, n_examples)
    if isinstance(subset_seed, bool) or not isinstance(subset_seed, int):
        raise ValueError(f"Expected subset_seed to be an integer but got {subset_seed!r}")
    return StreamedData.stream(*source, device, dtype, n_examples, subset_seed)
