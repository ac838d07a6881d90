"""What a hard but fair user broke in the evaluation engine, each against today's numbers: a
checkpoint is never reused for another model or other data, BatchNorm statistics do not follow the
memory budget, streamed data are checked as data in memory are, and memory stays bounded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from loss_landscape_anim import LossEvaluator, compute_loss_grid
from loss_landscape_anim.errors import DataError, IncompatibleFileError
from loss_landscape_anim.evaluate import DEFAULT_MEMORY_BUDGET
from loss_landscape_anim.evaluate.streamed import StreamedData
from oracle import RTOL, oracle_grid, random_plane, spirals

GRID = {"resolution": 4, "chunk_size": 4, "progress": False}


class Net(nn.Module):
    """The same class and parameter layout whatever its activation and loss."""

    def __init__(self, activation=torch.relu, loss=F.cross_entropy):
        super().__init__()
        torch.manual_seed(0)
        self.hidden, self.out = nn.Linear(2, 8), nn.Linear(8, 3)
        self.activation, self.loss = activation, loss

    def forward(self, x):
        return self.out(self.activation(self.hidden(x)))

    def loss_fn(self, y_pred, y):
        return self.loss(y_pred, y)


def smooth_l1(y_pred, y):
    return F.cross_entropy(y_pred, y, label_smoothing=0.2)


class Examples(Dataset):
    """A map-style dataset that is not a TensorDataset (so it can be streamed)."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


@pytest.mark.parametrize(
    "other", [Net(activation=torch.tanh), Net(loss=smooth_l1)], ids=["activation", "loss_fn"]
)
def test_a_checkpoint_of_a_model_that_computes_otherwise_is_refused(tmp_path, other):
    data = spirals(200)
    model = Net()
    plane = random_plane(model)
    path = tmp_path / "grid.npz"
    compute_loss_grid(model, data, plane, checkpoint=path, **GRID)
    before = path.read_bytes()
    with pytest.raises(IncompatibleFileError, match="probe: the model computes other values"):
        compute_loss_grid(other, data, plane, checkpoint=path, **GRID)
    assert path.read_bytes() == before  # never mixed in
    again = compute_loss_grid(Net(), data, plane, checkpoint=path, **GRID)  # the same: resumes
    np.testing.assert_allclose(again.loss, oracle_grid(model, *data, plane, again), rtol=RTOL)


def test_streamed_data_changed_after_the_first_examples_are_not_mixed_in(tmp_path):
    X, y = spirals(120)
    model = Net()
    plane = random_plane(model)
    path = tmp_path / "grid.npz"
    compute_loss_grid(model, Examples(X, y), plane, stream=True, checkpoint=path, **GRID)
    changed = y.clone()
    changed[-1] = (changed[-1] + 1) % 3  # the last label only
    with pytest.raises(IncompatibleFileError, match=r"data: '[0-9a-f]+' in the checkpoint"):
        compute_loss_grid(model, Examples(X, changed), plane, stream=True, checkpoint=path, **GRID)
    fingerprint = LossEvaluator(model, Examples(X, y), stream=True).data.fingerprint()
    small = LossEvaluator(model, Examples(X, y), stream=True, memory_budget=4096)
    assert small.data.batch_size < len(X)
    assert small.data.fingerprint() == fingerprint  # whatever the batches


def test_batch_norm_statistics_do_not_follow_the_memory_budget():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    X, y = spirals(257)  # batches of 128 would leave one example for the last: no crash
    plane = random_plane(model, scale=2.0)
    grids = [
        compute_loss_grid(model, (X, y), plane, bn="recompute", memory_budget=budget, **GRID).loss
        for budget in (None, 128 * 16 * 4 * 3)
    ]
    np.testing.assert_allclose(grids[1], grids[0], rtol=RTOL)


@pytest.mark.parametrize("dtype", [torch.int32, torch.int8, torch.uint8])
def test_streamed_labels_of_any_integer_dtype(dtype):
    X, y = spirals(60)
    model = Net()
    plane = random_plane(model)
    in_memory = compute_loss_grid(model, (X, y), plane, **GRID)
    streamed = compute_loss_grid(model, Examples(X, y.to(dtype)), plane, stream=True, **GRID)
    np.testing.assert_allclose(streamed.loss, in_memory.loss, rtol=RTOL)


def test_streamed_data_are_checked_like_data_in_memory():
    X, y = spirals(60)
    bad = X.clone()
    bad[45, 1] = float("nan")
    plane = random_plane(Net())
    with pytest.raises(DataError, match=r"evaluation inputs hold 1 non-finite value.*streamed"):
        compute_loss_grid(Net(), Examples(bad, y), plane, stream=True, memory_budget=4096, **GRID)
    with pytest.raises(DataError, match="the dataset to stream is empty"):
        LossEvaluator(Net(), Examples(X[:0], y[:0]), stream=True)


def test_batch_norm_without_running_statistics_is_evaluated():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(2, 8), nn.BatchNorm1d(8, track_running_stats=False), nn.ReLU(), nn.Linear(8, 3)
    )
    X, y = spirals(100)
    plane = random_plane(model)
    grid = compute_loss_grid(model, (X, y), plane, **GRID)
    np.testing.assert_allclose(grid.loss, oracle_grid(model, X, y, plane, grid), rtol=RTOL)


def test_a_weight_job_is_chunked_for_its_own_strategy():
    """Arbitrary weight vectors (path losses of many frames) are evaluated in chunks that fit
    the memory budget, not in the plane strategy's own chunk (1,000 points of ReLU regions)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 50), nn.ReLU(), nn.Linear(50, 3))
    evaluator = LossEvaluator(model, spirals())
    assert evaluator.plane_strategy.name == "relu_regions"
    chunk = evaluator.chunk_points(1001, evaluator.weight_strategy)
    per_point = evaluator.per_example * evaluator.data.batch_size
    assert chunk * per_point <= DEFAULT_MEMORY_BUDGET["cpu"]
    assert evaluator.chunk_points(1001) == 1000  # the plane strategy's own boxes


@pytest.mark.parametrize(
    ("path", "error", "match"),
    [
        (12, TypeError, "Expected checkpoint to be a file path but got int"),
        ("{dir}", ValueError, "Expected checkpoint to be a file path but .* is a directory"),
        ("{file}/grid.npz", ValueError, "Cannot write checkpoint .* is not a folder"),
    ],
)
def test_bad_checkpoint_paths_name_the_argument(tmp_path, path, error, match):
    (tmp_path / "afile").write_text("")
    if isinstance(path, str):
        path = path.format(dir=tmp_path, file=tmp_path / "afile")
    with pytest.raises(error, match=match):
        compute_loss_grid(Net(), spirals(20), random_plane(Net()), checkpoint=path, **GRID)


def test_a_streamed_dataset_is_read_in_fixed_order_for_its_fingerprint():
    X, y = spirals(30)
    data = StreamedData.stream(Examples(X, y), None, torch.device("cpu"), torch.float32)
    shuffled = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    other = StreamedData.stream(
        Examples(X[shuffled], y[shuffled]), None, torch.device("cpu"), torch.float32
    )
    assert data.fingerprint() != other.fingerprint()  # the same examples in another order
