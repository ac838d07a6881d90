"""``Preparation``: a model and its evaluation data, prepared once and shared by every evaluator of
a run (the loss evaluator, the curvature evaluator, and the analyses built on them).

Preparing is the costly part that all evaluations share: a private eval-mode copy of the model on
the device, the evaluation data read once (or streamed), the checks that model and data fit, the
ranks of a ``torch.distributed`` job (rank 0's buffers, the same data on every rank), and the
model probes (:mod:`.probes`). An evaluator built on a preparation adds only its own sizing and
strategy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import NumThreads, check_num_threads, resolve_device, thread_scope
from .._validate import check_optional_positive_int, check_positive_int
from .budgets import SMALL_WORK_BYTES
from .checkpoint import array_fingerprint
from .data import EvalData
from .functional import FunctionalModel
from .points import PlanePoints, Points, WeightPoints
from .precision import check_precision
from .probes import SequentialSplit, activation_bytes, has_conv, split_first_linear, vmap_works
from .ranks import ProcessGroupRanks, Ranks, SingleProcess, process_group_ranks, rank_device
from .streamed import StreamedData, streamed_source

__all__ = ["PREPARATION_OPTIONS", "Evaluator", "Preparation", "preparation_of"]

#: Examples and output values a checkpoint's probe of the model takes (see
#: :meth:`Preparation.probe`).
PROBE_EXAMPLES = 8
PROBE_VALUES = 64
#: The options of :class:`Preparation`; an evaluator given a preparation takes none of them.
PREPARATION_OPTIONS = (
    "device",
    "n_examples",
    "num_threads",
    "distributed",
    "stream",
    "subset_seed",
)


class Preparation:
    """A model and its evaluation data, prepared once for every evaluator of a run.

    Args:
        model: supplies the architecture, buffers and ``loss_fn``; a private eval-mode copy is
            made (the caller's model is never changed), and the weights of each point are passed
            to it.
        data: the evaluation data (a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``).
        device: where to compute; default CPU (``cuda:LOCAL_RANK`` under ``torch.distributed``
            where there are GPUs).
        n_examples: use the first ``n_examples`` examples only (streamed: a subset chosen once
            from ``subset_seed``).
        num_threads: CPU threads while evaluating (restored afterwards): a count, ``"auto"``
            (one thread when a forward pass over one data batch touches less than
            ``SMALL_WORK_BYTES``) or None (torch's setting).
        distributed: share the work between the ranks of the initialised ``torch.distributed``
            process group (None: when there is one; False: this process alone).
        stream: read the data from their dataset for every chunk of points instead of holding
            them in memory (None: for a dataset that is not a ``TensorDataset`` and is larger
            than :data:`~.streamed.DEFAULT_STREAM_BYTES`).
        subset_seed: the seed of the streamed subset.
    """

    def __init__(
        self,
        model: nn.Module,
        data: Any,
        *,
        device: str | torch.device | None = None,
        n_examples: int | None = None,
        num_threads: NumThreads = None,
        distributed: bool | None = None,
        stream: bool | None = None,
        subset_seed: int = 0,
    ):
        self._ranks: ProcessGroupRanks | None = process_group_ranks(distributed)
        if device is None and self._ranks is not None:
            device = rank_device()
        self.device = resolve_device(device)
        self.num_threads = check_num_threads(num_threads)
        self.model = FunctionalModel(model, self.device)
        data = _prepare(data, self.device, self.model.dtype, n_examples, stream, subset_seed)
        self.model.check(*data.head(2))
        self.data = _aligned(data, self.model).counted(self.model.loss_fn.counts)
        self._data_fingerprint: str | None = None
        if self._ranks is not None:
            self._data_fingerprint = self.data.fingerprint()
            self._ranks.check_same("evaluation data", self._data_fingerprint)
            for buffer in self.model.module.buffers():
                self._ranks.broadcast_(buffer)
        #: Bytes of the intermediate outputs of one example's forward pass (measured on two: a
        #: BatchNorm without running statistics normalises by the batch's, which needs two).
        self.example_bytes = activation_bytes(self.model.module, self.data.head(2)[0])

    @property
    def ranks(self) -> Ranks | None:
        """The ranks sharing the work (None: this process alone)."""
        return self._ranks

    @property
    def n_examples(self) -> int:
        return self.data.n_examples

    @property
    def n_params(self) -> int:
        return self.model.layout.n_params

    @cached_property
    def split(self) -> SequentialSplit | None:
        """The model cut after its first layer linear in its weights (None: it cannot be, or
        the points do not hold every parameter, or the inputs are named, or the loss is per
        token)."""
        x = self.data.head(2)[0]
        if isinstance(x, dict) or not self.model.covers_all or self.model.loss_fn.tokens:
            return None
        return split_first_linear(self.model.module, x)

    @cached_property
    def vmap_works(self) -> bool:
        """Whether ``torch.vmap`` runs the model and its loss."""
        return vmap_works(self.model, self.data)

    def has_conv(self, *, after_split: bool = False) -> bool:
        """Whether the model (the part after its hoisted first layer, with ``after_split``)
        holds a convolution."""
        mapped = self.split.rest if after_split and self.split is not None else self.model.module
        return has_conv(mapped)

    def threads(self, batch_bytes: int) -> contextlib.AbstractContextManager[None]:
        """``num_threads`` applied while a block computes, for work touching ``batch_bytes``
        bytes of activations per forward pass (``"auto"``: one thread below
        :data:`SMALL_WORK_BYTES` on the CPU)."""
        small = self.device.type == "cpu" and batch_bytes < SMALL_WORK_BYTES
        return thread_scope(self.num_threads, small=small)

    def plane_points(
        self, origin: np.ndarray, directions: np.ndarray, coords: np.ndarray
    ) -> PlanePoints:
        """The plane points ``origin + coords @ directions`` (rank 0's, should the ranks' differ
        in the last bits); their :meth:`~.points.PlanePoints.fingerprint` identifies them in a
        checkpoint."""
        arrays = [np.asarray(a, dtype=np.float64) for a in (origin, directions, coords)]
        ranks = self._ranks or SingleProcess()
        origin, directions, coords = (ranks.broadcast_array(a) for a in arrays)
        return PlanePoints.of(origin, directions, coords, self.device, self.model.dtype)

    def weight_points(self, weights: np.ndarray) -> WeightPoints:
        """Arbitrary flat weight vectors (K, P) (the same on every rank)."""
        self.check_size(np.shape(weights)[-1], "the weight vectors")
        return WeightPoints.of(weights, self.device, self.model.dtype)

    def check_size(self, size: int, what: str) -> None:
        """Raise ``ValueError`` unless ``what`` holds one value per parameter of the layout."""
        if size != self.n_params:
            frozen = sum(p.numel() for p in self.model.module.parameters()) - self.n_params
            held = (
                f"{self.n_params} trainable of {self.n_params + frozen}"
                if frozen
                else str(self.n_params)
            )
            raise ValueError(
                f"Expected {what} to hold one value per parameter of the model ({held} "
                f"parameters: its trainable ones when some are frozen) but got {size}: a plane "
                "or trajectory of another model, or of the same model with other parameters "
                "frozen (requires_grad)"
            )

    def probe(self, points: Points) -> list[float]:
        """What the model computes at the first of ``points`` on the first examples: its loss
        and its first outputs (float64, at most :data:`PROBE_VALUES`). Two models of the same
        class and layout but another activation or ``loss_fn`` give other values: a checkpoint
        compares them (within rounding) before it resumes."""
        x, y = self.data.head(PROBE_EXAMPLES)
        first = points.weights(slice(0, 1))[0]
        if first.shape[-1] != self.n_params:  # points of another model: its layout tells
            return []
        with torch.no_grad():
            params = self.model.params(first)
            outputs = self.model.outputs(params, x)
            loss = self.model.loss_fn(outputs, y)
        values = [float(loss)]
        if isinstance(outputs, torch.Tensor):
            values += outputs.detach().double().reshape(-1)[:PROBE_VALUES].cpu().tolist()
        return values

    def identity(self) -> dict[str, Any]:
        """What every value depends on besides the points and the evaluator's own settings, as
        JSON values: the model's class, layout and buffers, the evaluation data, the dtype."""
        if self._data_fingerprint is None:
            self._data_fingerprint = self.data.fingerprint()
        layout = json.dumps(self.model.layout.to_json()).encode()
        identity = {
            "model": type(self.model.module).__qualname__,
            "layout": array_fingerprint(np.frombuffer(layout, dtype=np.uint8)),
            "buffers": array_fingerprint(*self.model.module.buffers()),
            "data": self._data_fingerprint,
            "n_examples": self.n_examples,
            "dtype": str(self.model.dtype).removeprefix("torch."),
        }
        if not self.model.covers_all:  # the frozen weights are part of every point
            held = set(self.model.layout.names)
            frozen = [p for n, p in self.model.module.named_parameters() if n not in held]
            identity["frozen"] = array_fingerprint(*frozen)
        return identity


class Evaluator:
    """What the loss and the curvature evaluators share: their preparation (made from ``model``
    and ``data`` with the preparation's ``options``, or shared: see :func:`preparation_of`), its
    model, device and ranks, the chunk size and memory budget asked for (checked), and the
    precision (checked against the device and the model's dtype). Each evaluator sets its own
    ``data`` (the preparation's, cut into batches for its budget)."""

    data: EvalData

    def __init__(
        self,
        model: Any,
        data: Any,
        options: dict[str, Any],
        *,
        chunk_size: int | None,
        memory_budget: int | None,
        precision: str | None,
    ):
        self.chunk_size = check_optional_positive_int(chunk_size, "chunk_size")
        if memory_budget is not None:
            check_positive_int(memory_budget, "memory_budget")
        self.preparation = preparation_of(model, data, options)
        self.model = self.preparation.model
        self.device = self.preparation.device
        self.ranks = self.preparation.ranks
        self.autocast_dtype = check_precision(precision, self.device, self.model.dtype)

    @property
    def n_examples(self) -> int:
        return self.data.n_examples


def preparation_of(model: Any, data: Any, options: dict[str, Any]) -> Preparation:
    """The preparation an evaluator is built on: ``model`` itself when it is a
    :class:`Preparation` (or an evaluator, whose preparation is shared), else a new one of
    ``model`` and ``data`` with ``options`` (those of :data:`PREPARATION_OPTIONS` not at their
    defaults)."""
    shared = model if isinstance(model, Preparation) else getattr(model, "preparation", None)
    if not isinstance(shared, Preparation):
        return Preparation(model, data, **options)
    given = sorted(name for name, value in options.items() if value != _DEFAULTS[name])
    if data is not None or given:
        extra = (["data"] if data is not None else []) + given
        raise ValueError(
            f"Expected no {', '.join(extra)} with a prepared model: the preparation "
            "already has its data and options (pass a model instead to prepare it anew)"
        )
    return shared


_DEFAULTS: dict[str, Any] = {
    "device": None,
    "n_examples": None,
    "num_threads": None,
    "distributed": None,
    "stream": None,
    "subset_seed": 0,
}


def _aligned(data: EvalData, model: FunctionalModel) -> EvalData:
    """The data of a causal language model with the next-token shift made once, each batch cut
    after its last labelled position (the model's loss then compares aligned positions): the
    positions after the last label (padding to the longest sequence, an unlabelled tail) are not
    computed. Other data as they are."""
    loss = model.loss_fn
    if not (loss.tokens and loss.shift):
        return data
    aligned = data.aligned()
    if aligned is None:
        return data
    model.loss_fn = dataclasses.replace(loss, shift=False)
    return aligned


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
