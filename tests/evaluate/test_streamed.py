"""Evaluation data streamed from their dataset for every chunk of points: the same grid as the
data held in memory (and as the per-point oracle), read once per chunk in fixed batches, a seeded
subset for ``n_examples``, automatic streaming of large datasets only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import loss_landscape_anim.evaluate.streamed as streamed
from loss_landscape_anim import LossEvaluator, compute_loss_grid
from loss_landscape_anim.evaluate.streamed import StreamedData
from loss_landscape_anim.models import MLP
from oracle import RTOL, Residual, oracle_grid, random_plane, spirals

GRID = {"resolution": 4, "chunk_size": 4, "progress": False}  # 4 chunks


class CountingDataset(Dataset):
    """A map-style dataset (not a TensorDataset) that counts the examples read from it."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor):
        self.X, self.y, self.reads = X, y, 0

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int):
        self.reads += 1
        return self.X[i], self.y[i]


def mlp() -> MLP:
    torch.manual_seed(0)
    return MLP(2, 3, hidden_dim=8)


@pytest.mark.parametrize("model_factory", [mlp, lambda: Residual()], ids=["mlp", "residual"])
def test_streamed_data_give_the_in_memory_grid(model_factory) -> None:
    model = model_factory()
    X, y = spirals(200)
    plane = random_plane(model)
    dataset = CountingDataset(X, y)
    # 50 examples a batch: several batches per pass
    grid = compute_loss_grid(model, dataset, plane, stream=True, memory_budget=2**14, **GRID)
    in_memory = compute_loss_grid(model, (X, y), plane, **GRID)
    np.testing.assert_allclose(grid.loss, in_memory.loss, rtol=RTOL)
    np.testing.assert_allclose(grid.loss, oracle_grid(model, X, y, plane, grid), rtol=RTOL)
    assert grid.n_examples == 200
    assert dataset.reads >= 4 * 200  # every chunk read the whole data again


def test_the_batches_are_fixed_and_read_in_order() -> None:
    X, y = spirals(100)
    evaluator = LossEvaluator(mlp(), CountingDataset(X, y), stream=True, memory_budget=2**13)
    data = evaluator.data
    assert isinstance(data, StreamedData)
    assert 1 < data.n_batches < 100
    first = [data.batch(b) for b in range(data.n_batches)]
    again = [data.batch(b) for b in range(data.n_batches)]  # a new pass
    for (xa, ya), (xb, yb) in zip(first, again, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert torch.equal(torch.cat([x for x, _ in first]), X)
    assert torch.equal(data.batch(1)[0], first[1][0])  # going back starts a new pass


def test_n_examples_streams_a_subset_chosen_once_from_the_seed() -> None:
    model = mlp()
    X, y = spirals()
    plane = random_plane(model)
    options = {"stream": True, "n_examples": 100, **GRID}
    a = compute_loss_grid(model, CountingDataset(X, y), plane, subset_seed=3, **options)
    b = compute_loss_grid(model, CountingDataset(X, y), plane, subset_seed=3, **options)
    c = compute_loss_grid(model, CountingDataset(X, y), plane, subset_seed=4, **options)
    chosen = torch.randperm(len(X), generator=torch.Generator().manual_seed(3))[:100].sort().values
    expected = compute_loss_grid(model, (X[chosen], y[chosen]), plane, **GRID)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_allclose(a.loss, expected.loss, rtol=RTOL)
    assert not np.allclose(a.loss, c.loss, rtol=1e-3)
    assert a.n_examples == 100


def test_a_shuffling_loader_is_streamed_in_a_fixed_order() -> None:
    model = mlp()
    X, y = spirals(120)
    plane = random_plane(model)
    loader = DataLoader(CountingDataset(X, y), batch_size=7, shuffle=True)
    grid = compute_loss_grid(model, loader, plane, stream=True, **GRID)
    np.testing.assert_allclose(grid.loss, oracle_grid(model, X, y, plane, grid), rtol=RTOL)


def test_only_large_datasets_are_streamed_unless_asked(monkeypatch) -> None:
    X, y = spirals(50)
    assert not isinstance(LossEvaluator(mlp(), CountingDataset(X, y)).data, StreamedData)
    monkeypatch.setattr(streamed, "DEFAULT_STREAM_BYTES", 1000)  # 50 examples are 50 * 16 bytes
    assert not isinstance(LossEvaluator(mlp(), CountingDataset(X, y)).data, StreamedData)
    assert isinstance(LossEvaluator(mlp(), CountingDataset(*spirals(70))).data, StreamedData)
    loader = DataLoader(torch.utils.data.TensorDataset(*spirals()), batch_size=10)
    assert not isinstance(LossEvaluator(mlp(), loader).data, StreamedData)  # in memory already
    assert not isinstance(
        LossEvaluator(mlp(), CountingDataset(*spirals(70)), stream=False).data, StreamedData
    )


def test_streaming_what_has_no_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="stream=True needs data backed by a map-style Dataset"):
        LossEvaluator(mlp(), spirals(10), stream=True)
    with pytest.raises(ValueError, match="Expected stream to be True, False or None but got 'yes'"):
        LossEvaluator(mlp(), CountingDataset(*spirals(10)), stream="yes")


def test_a_streamed_grid_resumes_from_its_checkpoint(tmp_path) -> None:
    model = mlp()
    X, y = spirals(100)
    plane = random_plane(model)
    path = tmp_path / "grid.npz"
    first = compute_loss_grid(
        model, CountingDataset(X, y), plane, stream=True, checkpoint=path, **GRID
    )
    dataset = CountingDataset(X, y)
    again = compute_loss_grid(model, dataset, plane, stream=True, checkpoint=path, **GRID)
    np.testing.assert_array_equal(again.loss, first.loss)
    # the first examples, to check the model, and one pass to fingerprint every example (so
    # that data changed since are not mixed in): nothing evaluated, which would read them again
    assert dataset.reads <= 2 + len(X)
