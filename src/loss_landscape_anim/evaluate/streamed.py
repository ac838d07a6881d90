"""Evaluation data too large for memory, streamed from its dataset for every chunk of points.

The schedule runs each chunk of points over every data batch in order (chunks outermost), so the
batches are read once per chunk, in a fixed order with fixed batches: every point sees exactly the
same examples. ``n_examples`` takes a subset chosen once from a seed (the first examples of a large
data set on disk are often sorted by class).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, TensorDataset

from ..data import Inputs, split_batch
from ..data.batches import align_next_token, input_tensors, inputs_to, take, trim_to_labels
from ..data.checks import check_finite_inputs, check_finite_tensor
from ..errors import DataError
from ..losses import as_targets
from .checkpoint import array_fingerprint
from .data import _NO_TERMS, Counter, EvalData

__all__ = ["DEFAULT_STREAM_BYTES", "StreamedData", "streamed_source"]

#: With ``stream=None``, data estimated larger than this many bytes are streamed.
DEFAULT_STREAM_BYTES = 2 * 2**30


def streamed_source(data: Any, stream: bool | None) -> tuple[Dataset, DataLoader | None] | None:
    """``(dataset, loader)`` to stream ``data`` from, or None to hold it in memory: with
    ``stream=True`` any map-style dataset behind ``data``; with None one that is not a
    ``TensorDataset`` (already in memory) and is larger than :data:`DEFAULT_STREAM_BYTES`."""
    if stream is not None and not isinstance(stream, bool):
        raise ValueError(f"Expected stream to be True, False or None but got {stream!r}")
    if stream is False:
        return None
    loader = data if isinstance(data, DataLoader) else None
    if loader is None and hasattr(data, "train_dataloader") and stream:
        made = data.train_dataloader()
        loader = made if isinstance(made, DataLoader) else None
    dataset: Any = getattr(data, "dataset", None) if not isinstance(data, Dataset) else data
    if dataset is None and loader is not None:
        dataset = loader.dataset
    usable = isinstance(dataset, Dataset) and not isinstance(dataset, IterableDataset)
    if stream:
        if not usable:
            raise ValueError(
                "stream=True needs data backed by a map-style Dataset (a Dataset, a DataLoader "
                f"or a data module over one) but got {type(data).__name__}"
            )
        return dataset, loader
    if not usable or isinstance(dataset, TensorDataset):
        return None
    return (dataset, loader) if _estimated_bytes(dataset) > DEFAULT_STREAM_BYTES else None


def _estimated_bytes(dataset: Dataset) -> int:
    x, y = split_batch(dataset[0])
    tensors = [torch.as_tensor(t) for _, t in input_tensors(x)] + [torch.as_tensor(y)]
    each = sum(t.numel() * t.element_size() for t in tensors)
    return each * len(dataset)  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class StreamedData(EvalData):
    """Fixed batches of ``batch_size`` examples read from ``source`` on each pass, in order, moved
    to ``device`` (floating inputs in ``dtype``). ``X`` and ``y`` hold the first examples only, to
    size and check the model on. ``counter`` counts the loss terms of each example of a batch
    (None: one each); their total over the data takes one more pass, once."""

    source: Any = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    num_workers: int = 0
    collate_fn: Any = None
    subset_seed: int = 0
    counter: Counter | None = None
    _cursor: dict[str, Any] = field(default_factory=dict, repr=False)
    _totals: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def stream(
        cls,
        dataset: Dataset,
        loader: DataLoader | None,
        device: torch.device,
        dtype: torch.dtype,
        n_examples: int | None = None,
        subset_seed: int = 0,
    ) -> StreamedData:
        """Stream ``dataset`` (``n_examples`` of it, chosen from ``subset_seed``), with the
        workers and collate function of ``loader`` when given."""
        n = len(dataset)  # type: ignore[arg-type]
        if n == 0:
            raise DataError(
                "Expected evaluation data but the dataset to stream is empty (0 examples)"
            )
        if n_examples is not None and n_examples < n:
            generator = torch.Generator().manual_seed(subset_seed)
            chosen = torch.randperm(n, generator=generator)[:n_examples].sort().values
            dataset = Subset(dataset, chosen.tolist())
        streamed = cls(
            X=torch.empty(0),
            y=torch.empty(0),
            batch_size=max(len(dataset), 1),  # type: ignore[arg-type]
            source=dataset,
            device=device,
            dtype=dtype,
            num_workers=loader.num_workers if loader is not None else 0,
            collate_fn=loader.collate_fn if loader is not None else None,
            subset_seed=subset_seed,
        )
        x, y = streamed._read(next(iter(streamed._loader(2))))
        return dataclasses.replace(streamed, X=x, y=y, _cursor={})

    @property
    def n_examples(self) -> int:
        return len(self.source)

    def with_batch_size(self, batch_size: int) -> StreamedData:
        size = max(1, min(batch_size, self.n_examples))
        return dataclasses.replace(self, batch_size=size, _cursor={})

    def aligned(self) -> StreamedData | None:
        if align_next_token(self.X, self.y) is None:
            return None
        streamed = dataclasses.replace(self, trim=True, _cursor={}, _totals={})
        x, y = streamed._read(next(iter(streamed._loader(2))))
        return dataclasses.replace(streamed, X=x, y=y)

    def counted(self, counter: Counter) -> StreamedData:
        counted = dataclasses.replace(self, counter=counter, _cursor={}, _totals={})
        if counter(self.y) is not None and not counted.total_weight:
            raise DataError(_NO_TERMS)
        return counted

    def weight(self, b: int) -> int:
        """The terms of the loss in batch ``b`` of the current pass."""
        y = self.batch(b)[1]
        counts = self.counter(y) if self.counter is not None else None
        return int(y.shape[0]) if counts is None else int(counts.sum())

    @property
    def total_weight(self) -> int:
        """The terms of the loss in all the data (counted in one pass, the first time)."""
        if self.counter is None or self.counter(self.y) is None:
            return self.n_examples
        if "total" not in self._totals:
            total = 0
            for batch in self._loader(self.batch_size):
                counts = self.counter(self._read(batch)[1])
                total += int(counts.sum()) if counts is not None else 0
            self._totals["total"] = total
        return self._totals["total"]

    def batch(self, b: int) -> tuple[Inputs, torch.Tensor]:
        """Batch ``b`` of the current pass; asking for batch 0 (or an earlier batch) starts a
        new pass over the data."""
        cursor = self._cursor
        if cursor.get("index") == b:
            return cursor["batch"]
        if "iterator" not in cursor or b < cursor["index"]:
            cursor["iterator"], cursor["index"] = iter(self._loader(self.batch_size)), -1
        while cursor["index"] < b:
            cursor["batch"] = self._read(next(cursor["iterator"]))
            cursor["index"] += 1
            self._check_once(cursor["index"], *cursor["batch"])
        return cursor["batch"]

    def _check_once(self, b: int, x: Inputs, y: torch.Tensor) -> None:
        """Refuse non-finite inputs or float targets, as in-memory data are refused, the first
        time batch ``b`` is read (every later pass reads the same examples)."""
        checked = self._cursor.setdefault("checked", set())
        if b in checked:
            return
        try:
            check_finite_inputs(x, "evaluation inputs")
            check_finite_tensor(y, "evaluation targets")
        except DataError as exc:
            raise DataError(f"{exc} (streamed batch {b} of {self.batch_size} examples)") from None
        checked.add(b)

    def head(self, k: int) -> tuple[Inputs, torch.Tensor]:
        return take(self.X, slice(0, k)), self.y[:k]

    def given_head(self, k: int) -> Inputs:
        """The inputs of the first ``k`` examples as given (before the next-token shift and the
        trimming), read in one batch of ``k`` whatever ``batch_size`` is."""
        k = max(1, min(k, self.n_examples))
        return self._read(next(iter(self._loader(k))), trim=False)[0]

    def fingerprint(self) -> str:
        """A hash of every example (as given, before any next-token shift or trimming) and
        target, in order (one pass over the data, whatever the batch size: the bytes of the
        examples are hashed one after the other)."""
        inputs, targets = hashlib.sha256(), hashlib.sha256()
        for digest, tensors in ((inputs, input_tensors(self.X)), (targets, [("", self.y)])):
            for name, tensor in tensors:
                digest.update(f"{name}{tensor.dtype}{tuple(tensor.shape[1:])}".encode())
        for batch in self._loader(self.batch_size):
            x, y = self._read(batch, trim=False)
            for digest, tensors in ((inputs, input_tensors(x)), (targets, [("", y)])):
                for _, tensor in tensors:
                    flat = tensor.detach().cpu().contiguous().reshape(-1)
                    digest.update(flat.view(torch.uint8).numpy().tobytes())
        size = torch.tensor([self.n_examples])
        return array_fingerprint(size, np.frombuffer(inputs.digest() + targets.digest(), np.uint8))

    def _loader(self, batch_size: int) -> DataLoader:
        return DataLoader(
            self.source,
            batch_size=batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
        )

    def _read(self, batch: Any, trim: bool | None = None) -> tuple[Inputs, torch.Tensor]:
        """A batch on the device, next-token aligned and trimmed when ``trim`` (None: when the
        data are, ``self.trim``)."""
        x, y = split_batch(batch)
        x = inputs_to(x if isinstance(x, dict) else torch.as_tensor(x), self.device, self.dtype)
        y = as_targets(torch.as_tensor(y).to(self.device))
        if self.trim if trim is None else trim:
            aligned = align_next_token(x, y)
            if aligned is None:
                raise DataError(
                    "Expected every streamed batch to hold sequences of its labels' length, as "
                    "the first did"
                )
            x, y = trim_to_labels(*aligned)
        return x, y
