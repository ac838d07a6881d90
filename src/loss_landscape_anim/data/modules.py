"""Built-in data modules and the conversion of user data into tensors.

A *data module* is any object with a ``train_dataloader()`` method (a Lightning ``LightningDataModule``
works as is). The built-in ones also expose ``input_dim``, ``num_classes`` and ``dataset`` (a
``TensorDataset`` of every example), so the default model can be sized from them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from .._validate import check_optional_positive_int, check_positive_int
from ..errors import DataError
from .batches import Inputs, concat_inputs, concat_targets, split_batch, take
from .batches import n_examples as count_examples

__all__ = ["DataModule", "SpiralsDataModule", "as_dataloader", "materialize"]


class DataModule:
    """Base class of the built-in data modules: a ``TensorDataset`` served by a ``DataLoader``.

    Subclasses set ``self.dataset`` (a ``TensorDataset``, or a :class:`NamedDataset` of named
    inputs and labels), and for classifiers ``self.input_dim`` and ``self.num_classes``.
    ``batch_size=None`` means full batch: one step per epoch.
    """

    dataset: TensorDataset | NamedDataset
    input_dim: int | tuple[int, ...]
    num_classes: int

    def __init__(
        self, batch_size: int | None = None, *, shuffle: bool = True, num_workers: int = 0
    ):
        self.batch_size = check_optional_positive_int(batch_size, "batch_size")
        self.shuffle = shuffle
        self.num_workers = check_positive_int(num_workers, "num_workers", allow_zero=True)

    def __len__(self) -> int:
        return len(self.dataset)

    def train_dataloader(self, generator: torch.Generator | None = None) -> DataLoader:
        """A loader over ``dataset``; full batch when ``batch_size`` is None."""
        return tensor_loader(
            self.dataset,
            self.batch_size,
            shuffle=self.shuffle,
            num_workers=self.num_workers,
            generator=generator,
        )


def tensor_loader(
    dataset: Dataset,
    batch_size: int | None,
    *,
    shuffle: bool,
    num_workers: int = 0,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """A loader that fetches whole batches by index lists (fast for a ``TensorDataset``, whose
    items would otherwise be fetched and collated one by one). ``batch_size=None``: full batch."""
    n = len(dataset)  # type: ignore[arg-type]
    size = batch_size if batch_size is not None else max(n, 1)
    if not isinstance(dataset, TensorDataset | NamedDataset):
        return DataLoader(
            dataset,
            batch_size=size,
            shuffle=shuffle and size < n,
            num_workers=num_workers,
            generator=generator,
        )
    return DataLoader(
        dataset,
        sampler=IndexBatches(n, size, shuffle=shuffle and size < n, generator=generator),
        batch_size=None,
        num_workers=num_workers,
    )


class IndexBatches(Sampler):
    """Batches of indices: slices in order, or slices of a fresh permutation (a tensor) when
    shuffling. A ``TensorDataset`` (or :class:`NamedDataset`) indexed with either returns a whole
    batch in one operation."""

    def __init__(
        self, n: int, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
    ):
        self.n, self.batch_size, self.shuffle, self.generator = n, batch_size, shuffle, generator

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[slice | torch.Tensor]:
        if not self.shuffle:
            for start in range(0, self.n, self.batch_size):
                yield slice(start, min(start + self.batch_size, self.n))
            return
        order = torch.randperm(self.n, generator=self.generator)
        yield from order.split(self.batch_size)


def make_spirals(
    n_per_class: int = 361,
    n_classes: int = 3,
    *,
    noise: float = 0.2,
    turns: float = 1.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interleaved 2D spirals, one arm per class, generated from ``seed`` (no file, no download).

    Returns ``X`` of shape (n_per_class * n_classes, 2), float32, and integer labels ``y``.
    """
    check_positive_int(n_per_class, "n_per_class")
    check_positive_int(n_classes, "n_classes")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"Expected noise to be a finite number >= 0 but got {noise!r}")
    generator = torch.Generator().manual_seed(seed)
    radius = torch.linspace(0.0, 1.0, n_per_class)
    xs, ys = [], []
    for label in range(n_classes):
        start = 2 * math.pi * label / n_classes
        angle = start + 2 * math.pi * turns * radius
        angle = angle + noise * torch.randn(n_per_class, generator=generator)
        xs.append(torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)], dim=1))
        ys.append(torch.full((n_per_class,), label, dtype=torch.long))
    return torch.cat(xs).float(), torch.cat(ys)


class SpiralsDataModule(DataModule):
    """The built-in 3-class 2D spirals data (1,083 points by default), full batch by default.

    Generated in code from ``seed``, so it needs no file: the same seed gives the same points.
    """

    def __init__(
        self,
        batch_size: int | None = None,
        *,
        n_per_class: int = 361,
        n_classes: int = 3,
        noise: float = 0.2,
        seed: int = 0,
        shuffle: bool = True,
        num_workers: int = 0,
    ):
        super().__init__(batch_size, shuffle=shuffle, num_workers=num_workers)
        X, y = make_spirals(n_per_class, n_classes, noise=noise, seed=seed)
        self.dataset = TensorDataset(X, y)
        self.input_dim = 2
        self.num_classes = n_classes


def as_dataloader(data: Any, *, batch_size: int | None = None) -> DataLoader:
    """Turn any accepted form of training data into a ``DataLoader``.

    Accepted: an object with ``train_dataloader()`` (data module), a ``DataLoader``, a ``Dataset``
    of ``(x, y)`` pairs (or of dicts with ``labels``), an ``(X, y)`` pair of tensors/arrays, or one
    dict batch with ``labels`` (a ``transformers.BatchEncoding``). ``batch_size`` applies to the
    last three forms (None: full batch).
    """
    if hasattr(data, "train_dataloader"):
        loader = data.train_dataloader()
        if not isinstance(loader, Iterable):
            raise TypeError(
                f"Expected data.train_dataloader() to return an iterable of (x, y) batches "
                f"but got {type(loader).__name__}"
            )
        return loader  # type: ignore[return-value]
    if isinstance(data, DataLoader):
        return data
    return tensor_loader(_as_dataset(data), batch_size, shuffle=batch_size is not None)


def _as_dataset(data: Any) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, Mapping):
        inputs, labels = split_batch(data)
        assert isinstance(inputs, dict)
        return NamedDataset(inputs, labels)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = (torch.as_tensor(v) for v in data)
        if X.shape[0] != y.shape[0]:
            raise DataError(
                f"Expected X and y with the same number of examples but got X with "
                f"{X.shape[0]} and y with {y.shape[0]}"
            )
        return TensorDataset(X, y)  # inputs keep their dtype: they are cast to the model's
    raise TypeError(
        "Expected data to be a data module (with train_dataloader()), a DataLoader, a Dataset, "
        f"an (X, y) pair or a dict batch with 'labels' but got {type(data).__name__}"
    )


class NamedDataset(Dataset):
    """Examples of named inputs and their labels (one dict batch: a ``BatchEncoding`` with
    ``labels``), as dicts: one example for an integer index, a batch for a slice or an index
    tensor."""

    def __init__(self, inputs: dict[str, torch.Tensor], labels: torch.Tensor):
        self.inputs, self.labels = inputs, labels
        if count_examples(inputs) != labels.shape[0]:
            raise DataError(
                f"Expected the labels to hold as many examples as the inputs but got "
                f"{labels.shape[0]} labels for {count_examples(inputs)} inputs"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: Any) -> dict[str, torch.Tensor]:
        return {**{k: v[index] for k, v in self.inputs.items()}, "labels": self.labels[index]}


def materialize(data: Any, *, n_examples: int | None = None) -> tuple[Inputs, torch.Tensor]:
    """All (or the first ``n_examples``) examples of ``data`` as ``(X, y)``, in a fixed order:
    ``X`` a tensor, or named tensors for dict batches (sequences padded to the longest, see
    :func:`~.batches.concat_inputs`), ``y`` the targets.

    Used for evaluation: the data are read once, in the loader's order but without shuffling when the
    source is a dataset, so every grid point sees exactly the same examples.
    """
    limit = check_optional_positive_int(n_examples, "n_examples")
    X: Inputs
    y: torch.Tensor
    dataset = data if isinstance(data, NamedDataset) else getattr(data, "dataset", None)
    if isinstance(dataset, NamedDataset):
        X, y = dataset.inputs, dataset.labels
        if limit is not None:
            X, y = take(X, slice(0, limit)), y[:limit]
        return _check_nonempty(X, y)
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        X, y = dataset.tensors[0], dataset.tensors[1]
        if limit is not None:
            X, y = X[:limit], y[:limit]
        return _check_nonempty(X, y)
    if isinstance(data, Mapping):  # one dict batch: all the data
        return materialize(_as_dataset(data), n_examples=limit)
    if not hasattr(data, "train_dataloader") and not isinstance(data, DataLoader):
        loader = tensor_loader(_as_dataset(data), 1024, shuffle=False)
    else:
        loader = as_dataloader(data)
    xs: list[Inputs] = []
    ys: list[torch.Tensor] = []
    count = 0
    for batch in loader:
        x, y = split_batch(batch)
        xs.append(x)
        ys.append(torch.as_tensor(y))
        count += count_examples(x)
        if limit is not None and count >= limit:
            break
    if not xs:
        raise DataError("Expected data with at least one example but the loader yielded none")
    X, y = concat_inputs(xs), concat_targets(ys)
    if limit is not None:
        X, y = take(X, slice(0, limit)), y[:limit]
    return _check_nonempty(X, y)


def _check_nonempty(X: Inputs, y: torch.Tensor) -> tuple[Inputs, torch.Tensor]:
    if count_examples(X) == 0:
        raise DataError("Expected data with at least one example but got an empty data set")
    return X, y
