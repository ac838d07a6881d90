"""Tests of the built-in spirals data module and the conversion of user data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from loss_landscape_anim.data.modules import (
    SpiralsDataModule,
    as_dataloader,
    make_spirals,
    materialize,
    split_batch,
)
from loss_landscape_anim.errors import DataError


class PairDataset(Dataset):
    """A map-style dataset that is not a TensorDataset."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.tensor([float(i), -float(i)]), i % 3


def test_spirals_shape_and_classes() -> None:
    dm = SpiralsDataModule()
    X, y = dm.dataset.tensors
    assert len(dm) == 1083
    assert X.shape == (1083, 2) and X.dtype == torch.float32
    assert y.dtype == torch.int64
    assert torch.equal(torch.bincount(y), torch.tensor([361, 361, 361]))
    assert (dm.input_dim, dm.num_classes) == (2, 3)
    assert float(X.norm(dim=1).max()) <= 1.0 + 1e-6  # points lie within the unit disc


def test_spirals_are_deterministic_from_seed() -> None:
    a = SpiralsDataModule(seed=0).dataset.tensors[0]
    b = SpiralsDataModule(seed=0).dataset.tensors[0]
    c = SpiralsDataModule(seed=1).dataset.tensors[0]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    state = torch.get_rng_state()
    make_spirals(seed=3)
    assert torch.equal(torch.get_rng_state(), state)


def test_spirals_options() -> None:
    dm = SpiralsDataModule(n_per_class=10, n_classes=4, noise=0.0)
    X, y = dm.dataset.tensors
    assert X.shape == (40, 2)
    assert dm.num_classes == 4
    assert torch.equal(y, torch.arange(4).repeat_interleave(10))
    # without noise the first point of each arm is the centre and the last lies on the unit circle
    assert torch.allclose(X[::10], torch.zeros(4, 2))
    assert torch.allclose(X[9::10].norm(dim=1), torch.ones(4))


def test_full_batch_by_default() -> None:
    dm = SpiralsDataModule()
    assert dm.batch_size is None
    assert dm.num_workers == 0
    loader = dm.train_dataloader()
    assert loader.num_workers == 0
    assert len(loader) == 1
    batches = list(loader)
    assert len(batches) == 1
    X, y = dm.dataset.tensors
    assert torch.equal(batches[0][0], X) and torch.equal(batches[0][1], y)


def epoch_rows(loader: DataLoader) -> tuple[torch.Tensor, list[int]]:
    xs, sizes = [], []
    for x, _ in loader:
        xs.append(x)
        sizes.append(len(x))
    return torch.cat(xs), sizes


def sorted_rows(X: torch.Tensor) -> np.ndarray:
    array = X.numpy()
    return array[np.lexsort(array.T[::-1])]


def test_shuffled_mini_batches_cover_every_example_once() -> None:
    dm = SpiralsDataModule(batch_size=100)
    X = dm.dataset.tensors[0]
    loader = dm.train_dataloader()
    assert len(loader) == 11
    first, sizes = epoch_rows(loader)
    second, _ = epoch_rows(loader)
    assert sizes == [100] * 10 + [83]
    np.testing.assert_array_equal(sorted_rows(first), sorted_rows(X))
    np.testing.assert_array_equal(sorted_rows(second), sorted_rows(X))
    assert not torch.equal(first, X)  # shuffled
    assert not torch.equal(first, second)  # a fresh order each epoch


def test_loader_order_follows_the_generator() -> None:
    dm = SpiralsDataModule(batch_size=64)
    a, _ = epoch_rows(dm.train_dataloader(torch.Generator().manual_seed(7)))
    b, _ = epoch_rows(dm.train_dataloader(torch.Generator().manual_seed(7)))
    c, _ = epoch_rows(dm.train_dataloader(torch.Generator().manual_seed(8)))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_unshuffled_mini_batches_are_in_order() -> None:
    dm = SpiralsDataModule(batch_size=500, shuffle=False)
    rows, sizes = epoch_rows(dm.train_dataloader())
    assert sizes == [500, 500, 83]
    assert torch.equal(rows, dm.dataset.tensors[0])


def test_materialize_forms_and_n_examples() -> None:
    dm = SpiralsDataModule()
    X, y = dm.dataset.tensors
    mX, my = materialize(dm)
    assert torch.equal(mX, X) and torch.equal(my, y)
    mX, my = materialize(dm, n_examples=10)
    assert torch.equal(mX, X[:10]) and torch.equal(my, y[:10])
    mX, my = materialize((X.double().numpy(), y.numpy()), n_examples=5000)
    assert mX.dtype == torch.float64  # kept: cast to the model's dtype where it is used
    assert torch.equal(mX.float(), X) and torch.equal(my, y)
    shuffled = DataLoader(TensorDataset(X, y), batch_size=100, shuffle=True)
    mX, _ = materialize(shuffled)
    assert torch.equal(mX, X)  # a fixed order, whatever the loader's


def test_materialize_iterates_other_datasets() -> None:
    X, y = materialize(PairDataset(2500), n_examples=1500)
    assert X.shape == (1500, 2)
    assert torch.equal(X[:, 0], torch.arange(1500, dtype=torch.float32))
    assert torch.equal(y, torch.arange(1500) % 3)


def test_as_dataloader_forms() -> None:
    X, y = torch.randn(10, 2), torch.arange(10) % 3
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    assert as_dataloader(loader) is loader
    ((bx, by),) = list(as_dataloader((X, y)))
    assert torch.equal(bx, X) and torch.equal(by, y)
    assert [len(b[0]) for b in as_dataloader(TensorDataset(X, y), batch_size=4)] == [4, 4, 2]


def test_errors_for_bad_data() -> None:
    with pytest.raises(TypeError, match=r"Expected data to be a data module .* but got int"):
        as_dataloader(42)
    with pytest.raises(TypeError, match="but got tuple"):
        as_dataloader((torch.zeros(3, 2),))
    with pytest.raises(DataError, match="same number of examples but got X with 5 and y with 4"):
        as_dataloader((torch.zeros(5, 2), torch.zeros(4)))

    class Broken:
        def train_dataloader(self):
            return 3

    with pytest.raises(
        TypeError, match=r"train_dataloader\(\) to return an iterable .* but got int"
    ):
        as_dataloader(Broken())


def test_errors_for_empty_data() -> None:
    empty = (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(DataError, match="Expected data with at least one example"):
        materialize(empty)
    with pytest.raises(DataError, match="at least one example but got an empty data set"):
        materialize(DataLoader(TensorDataset(*empty)))
    with pytest.raises(DataError, match="at least one example but the loader yielded none"):
        materialize(DataLoader(PairDataset(0), batch_size=2))


def test_errors_for_bad_options() -> None:
    with pytest.raises(ValueError, match="Expected batch_size to be a positive integer but got 0"):
        SpiralsDataModule(batch_size=0)
    with pytest.raises(
        ValueError, match="Expected num_workers to be a non-negative integer but got -1"
    ):
        SpiralsDataModule(num_workers=-1)
    with pytest.raises(ValueError, match=r"Expected noise to be a finite number >= 0 but got -0.5"):
        SpiralsDataModule(noise=-0.5)
    with pytest.raises(ValueError, match="Expected n_examples to be a positive integer but got 0"):
        materialize(SpiralsDataModule(), n_examples=0)


def test_split_batch() -> None:
    x, y = torch.zeros(2), torch.ones(2)
    assert split_batch((x, y, "extra")) == (x, y)
    with pytest.raises(
        DataError, match="an \\(x, y\\) pair or a dict with 'labels' but got list of length 1"
    ):
        split_batch([x])
    with pytest.raises(DataError, match=r"but got Tensor$"):
        split_batch(x)
