"""``LossEvaluator``: the mean loss of one architecture at many weight vectors.

It prepares the evaluation data once, sizes data batches and chunks of points to a memory budget,
and chooses once how a chunk is evaluated (a strategy from :mod:`.strategies`); the schedule
(:mod:`.schedule`) runs the chunks. The loss grid, the path losses and future analyses are thin
users of it.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import NumThreads, check_num_threads, resolve_device, thread_scope
from .._validate import check_choice, check_optional_positive_int, check_positive_int
from .data import EvalData
from .functional import FunctionalModel, compute_dtype
from .points import PlanePoints, Points, WeightPoints
from .schedule import chunk_slices, collect
from .sizing import activation_bytes
from .strategies import STRATEGIES, make_strategy, vmap_works
from .strategies.base import Strategy, map_points
from .strategies.split import split_first_linear

__all__ = [
    "DEFAULT_CACHE_BUDGET",
    "DEFAULT_MEMORY_BUDGET",
    "SMALL_WORK_BYTES",
    "LossEvaluator",
]

logger = logging.getLogger(__name__)

#: Default bytes of activations one chunk of points may use, by device type. On the CPU small
#: chunks win: their tensors stay in cache and are recycled by the allocator instead of being
#: freshly mapped (page faults) every time; a GPU wants large launches.
DEFAULT_MEMORY_BUDGET = {"cpu": 16 * 2**20, "cuda": 2**30, "mps": 2**30}
#: Default bytes of first-layer outputs kept for a whole job (all data batches), by device type.
DEFAULT_CACHE_BUDGET = {"cpu": 512 * 2**20, "cuda": 4 * 2**30, "mps": 2**30}
#: Activations are counted this many times over, for temporaries of the backward-free forward.
_ACTIVATION_OVERHEAD = 2
#: With ``num_threads="auto"`` on the CPU, evaluations whose forward pass over one data batch
#: touches fewer activation bytes than this run on one thread: their operations are too short to
#: gain from a thread team, which stalls for a whole scheduler time slice whenever another process
#: holds a core.
SMALL_WORK_BYTES = 8 * 2**20


class LossEvaluator:
    """Mean loss of ``model``'s architecture at many weight vectors, on data prepared once.

    Args:
        model: supplies the architecture, buffers and ``loss_fn``; evaluated in eval mode on a
            private copy, with the weights of each point passed in.
        data: the evaluation data (a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``).
        device: where to compute; default CPU.
        n_examples: use the first ``n_examples`` examples only.
        chunk_size: points per chunk; default: as many as ``memory_budget`` allows.
        memory_budget: bytes of activations one chunk may use (default by device type).
        num_threads: CPU threads (restored afterwards): a count, ``"auto"`` (one thread when a
            forward pass over one data batch touches less than ``SMALL_WORK_BYTES``) or None
            (torch's setting).
        strategy: how a chunk of plane points is evaluated: ``"auto"`` (the fastest that
            applies), ``"linear_chain"``, ``"first_layer"``, ``"vmap"`` or ``"per_point"``.
            Arbitrary weight vectors use ``"vmap"`` or ``"per_point"``.
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
    ):
        self.device = resolve_device(device)
        self.chunk_size = check_optional_positive_int(chunk_size, "chunk_size")
        if memory_budget is None:
            memory_budget = DEFAULT_MEMORY_BUDGET.get(self.device.type, 2**28)
        self.memory_budget = check_positive_int(memory_budget, "memory_budget")
        self.num_threads = check_num_threads(num_threads)
        strategy = check_choice(strategy, "strategy", ("auto", *STRATEGIES))
        self.model = FunctionalModel(model, self.device)
        data = EvalData.prepare(data, self.device, self.model.dtype, n_examples)
        self.model.check(data.X, data.y)
        self.per_example = activation_bytes(self.model.module, data.X[:1]) * _ACTIVATION_OVERHEAD
        self.data = data.with_batch_size(self.memory_budget // max(self.per_example, 1))
        self.small = self.device.type == "cpu" and (
            self.per_example * self.data.batch_size < SMALL_WORK_BYTES
        )
        self.split = split_first_linear(self.model.module, data.X[:2])
        self.vectorized = self._vectorized()
        self.plane_strategy = self._make(strategy, plane=True)
        self.weight_strategy = self._make(strategy, plane=False)

    @property
    def n_examples(self) -> int:
        return self.data.n_examples

    @property
    def precision(self) -> str:
        """The dtype products run in here and now (the autocast dtype under autocast)."""
        return str(compute_dtype(self.device, self.model.dtype)).removeprefix("torch.")

    def plane_losses(
        self,
        origin: np.ndarray,
        directions: np.ndarray,
        coords: np.ndarray,
        *,
        progress: bool = False,
        desc: str = "",
    ) -> np.ndarray:
        """Mean loss (K,) float64 at the plane points ``origin + coords @ directions``, with
        ``origin`` (P,), ``directions`` (2, P) and ``coords`` (K, 2)."""
        points = PlanePoints.of(origin, directions, coords, self.device, self.model.dtype)
        return self._run(self.plane_strategy, points, progress, desc)

    def weight_losses(
        self, weights: np.ndarray, *, progress: bool = False, desc: str = ""
    ) -> np.ndarray:
        """Mean loss (K,) float64 at arbitrary flat weight vectors ``weights`` (K, P)."""
        points = WeightPoints.of(weights, self.device, self.model.dtype)
        return self._run(self.weight_strategy, points, progress, desc)

    def weight_accuracies(self, weights: np.ndarray) -> np.ndarray:
        """Accuracy (K,) float64 at flat weight vectors ``weights`` (K, P): the share of examples
        whose argmax prediction is the label, in chunks of points like the loss. NaN for a model
        that does not output class logits for integer labels."""
        points = WeightPoints.of(weights, self.device, self.model.dtype)
        n = len(points)
        if not self.model.is_classifier(self.data.X, self.data.y):
            return np.full(n, np.nan)
        correct = np.zeros(n, dtype=np.int64)
        model = self.model
        with torch.no_grad(), thread_scope(self.num_threads, small=self.small):
            for sl in chunk_slices(n, self.chunk_points(n)) if n else []:
                params = model.params(points.weights(sl))
                for b in range(self.data.n_batches):
                    xb, yb = self.data.batch(b)

                    def point_correct(p: dict[str, torch.Tensor]) -> torch.Tensor:
                        return model.correct(p, xb, yb)  # noqa: B023 (used at once)

                    counts = map_points(point_correct, (params,), self.vectorized)
                    correct[sl] += counts.cpu().numpy().astype(np.int64)
        return correct / self.n_examples

    def chunk_points(self, n_points: int) -> int:
        """Points per chunk for a job of ``n_points`` points."""
        if self.chunk_size is not None:
            return min(self.chunk_size, n_points)
        chunk = self.memory_budget // max(self.per_example * self.data.batch_size, 1)
        return max(1, min(chunk, n_points))

    def _run(self, strategy: Strategy, points: Points, progress: bool, desc: str) -> np.ndarray:
        n = len(points)
        if n == 0:
            return np.empty(0, dtype=np.float64)
        with torch.no_grad(), thread_scope(self.num_threads, small=self.small):
            strategy.start(points)
            return collect(
                strategy, self.data, n, self.chunk_points(n), progress=progress, desc=desc
            )

    def _vectorized(self) -> bool:
        """Whether points are mapped with ``torch.vmap``: not for convolutions on the CPU (vmap
        makes them grouped convolutions, slower there than one per point), nor for a model or
        loss that vmap cannot run."""
        mapped = self.split.rest if self.split is not None else self.model.module
        has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in mapped.modules())
        if has_conv and self.device.type == "cpu":
            return False
        if not vmap_works(self.model, self.data):
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
