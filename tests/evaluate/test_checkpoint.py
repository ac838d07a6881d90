"""Resumable grids: ``compute_loss_grid(..., checkpoint=path)`` after a failure and after ``kill -9``
gives the grid of an uninterrupted run and computes only what is missing; checkpoints of other
jobs are refused with what differs."""

from __future__ import annotations

import copy
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import loss_landscape_anim.evaluate.schedule as schedule
from loss_landscape_anim import compute_loss_grid
from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.models import MLP
from oracle import random_plane, spirals

ROOT = Path(__file__).resolve().parents[2]
CHUNK_LOSSES = schedule.chunk_losses
OPTIONS = {"resolution": 6, "chunk_size": 4, "progress": False}  # 9 chunks


def model_and_data():
    torch.manual_seed(0)
    return MLP(2, 3, hidden_dim=8), spirals(300)


class Counter:
    """Counts the chunks evaluated, and raises after ``fail_after`` of them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_after: int | None = None):
        self.calls = 0
        self.fail_after = fail_after

        def counting(strategy, data, sl):
            if self.fail_after is not None and self.calls == self.fail_after:
                raise RuntimeError("node pre-empted")
            self.calls += 1
            return CHUNK_LOSSES(strategy, data, sl)

        monkeypatch.setattr(schedule, "chunk_losses", counting)


def saved_done(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as archive:
        return archive["done"]


def test_a_failed_run_resumes_computing_only_the_missing_chunks(tmp_path, monkeypatch) -> None:
    model, data = model_and_data()
    plane = random_plane(model)
    expected = compute_loss_grid(model, data, plane, **OPTIONS)

    path = tmp_path / "grid.ckpt.npz"
    failing = Counter(monkeypatch, fail_after=3)
    with pytest.raises(RuntimeError, match="node pre-empted"):
        compute_loss_grid(model, data, plane, checkpoint=path, **OPTIONS)
    assert failing.calls == 3
    assert saved_done(path).sum() == 12  # the 3 finished chunks, written as the run failed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.ckpt.npz"]  # no partial file

    resumed = Counter(monkeypatch)
    grid = compute_loss_grid(model, data, plane, checkpoint=path, **OPTIONS)
    assert resumed.calls == 9 - 3
    np.testing.assert_array_equal(grid.loss, expected.loss)
    np.testing.assert_array_equal(grid.xs, expected.xs)
    assert saved_done(path).all()

    again = Counter(monkeypatch)
    np.testing.assert_array_equal(
        compute_loss_grid(model, data, plane, checkpoint=path, **OPTIONS).loss, expected.loss
    )
    assert again.calls == 0


def test_resuming_with_another_chunk_size_gives_the_same_grid(tmp_path, monkeypatch) -> None:
    model, data = model_and_data()
    plane = random_plane(model)
    expected = compute_loss_grid(model, data, plane, **OPTIONS)
    path = tmp_path / "grid.npz"
    Counter(monkeypatch, fail_after=2)
    with pytest.raises(RuntimeError):
        compute_loss_grid(model, data, plane, checkpoint=path, **OPTIONS)
    counter = Counter(monkeypatch)
    grid = compute_loss_grid(model, data, plane, checkpoint=path, **{**OPTIONS, "chunk_size": 5})
    assert counter.calls == 8 - 1  # of 8 chunks of 5, only the first is among the 8 points done
    np.testing.assert_allclose(grid.loss, expected.loss, rtol=1e-6)


def test_the_progress_bar_counts_resumed_points(tmp_path, monkeypatch) -> None:
    model, data = model_and_data()
    plane = random_plane(model)
    path = tmp_path / "grid.npz"
    Counter(monkeypatch, fail_after=5)
    with pytest.raises(RuntimeError):
        compute_loss_grid(model, data, plane, checkpoint=path, **OPTIONS)
    Counter(monkeypatch)
    bars = []
    real = schedule.progress_bar

    def spy(*args, **kwargs):
        bar = real(*args, **kwargs)
        bars.append((kwargs, bar))
        return bar

    monkeypatch.setattr(schedule, "progress_bar", spy)
    compute_loss_grid(model, data, plane, checkpoint=path, **{**OPTIONS, "progress": True})
    ((kwargs, bar),) = bars
    assert (kwargs["total"], kwargs["initial"]) == (36, 20)
    assert bar.n == 36


SCRIPT = """
import sys, time
import torch
sys.path[:0] = [{src!r}, {tests!r}]
import loss_landscape_anim.evaluate.schedule as schedule
from loss_landscape_anim import compute_loss_grid
from loss_landscape_anim.models import MLP
from oracle import random_plane, spirals

original = schedule.chunk_losses
def slow(strategy, data, sl):
    time.sleep(0.2)
    return original(strategy, data, sl)
schedule.chunk_losses = slow
torch.manual_seed(0)
model = MLP(2, 3, hidden_dim=8)
compute_loss_grid(model, spirals(300), random_plane(model), checkpoint={path!r},
                  resolution=6, chunk_size=4, progress=False)
"""


def test_a_run_killed_with_sigkill_resumes(tmp_path, monkeypatch) -> None:
    path = tmp_path / "grid.npz"
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            SCRIPT.format(src=str(ROOT / "src"), tests=str(ROOT / "tests"), path=str(path))
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if path.exists() and saved_done(path).sum() >= 8:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
    done_before = saved_done(path)
    assert 8 <= done_before.sum() < 36

    model, data = model_and_data()
    plane = random_plane(model)
    counter = Counter(monkeypatch)
    grid = compute_loss_grid(model, data, plane, checkpoint=path, **OPTIONS)
    assert counter.calls == 9 - done_before.sum() // 4
    expected = compute_loss_grid(model, data, plane, **OPTIONS)
    np.testing.assert_array_equal(grid.loss, expected.loss)


def test_a_checkpoint_of_another_job_is_refused_with_what_differs(tmp_path) -> None:
    model, data = model_and_data()
    plane = random_plane(model)
    path = tmp_path / "grid.npz"
    compute_loss_grid(model, data, plane, checkpoint=path, **OPTIONS)
    before = path.read_bytes()

    with pytest.raises(
        IncompatibleFileError, match=r"checkpoint .* resolution: 6 in the checkpoint, 7 now"
    ):
        compute_loss_grid(model, data, plane, checkpoint=path, **{**OPTIONS, "resolution": 7})
    with pytest.raises(
        IncompatibleFileError, match=r"checkpoint .*margin: 0.3 in the checkpoint, 0.5 now"
    ):
        compute_loss_grid(model, data, plane, checkpoint=path, margin=0.5, **OPTIONS)
    with pytest.raises(IncompatibleFileError, match=r"checkpoint .*data: '[0-9a-f]+' in the"):
        compute_loss_grid(model, spirals(301), plane, checkpoint=path, **OPTIONS)
    with pytest.raises(IncompatibleFileError, match=r"checkpoint .*plane: '"):
        compute_loss_grid(model, data, random_plane(model, seed=1), checkpoint=path, **OPTIONS)
    with pytest.raises(IncompatibleFileError, match=r"checkpoint .*layout: '"):
        compute_loss_grid(MLP(2, 3, hidden_dim=9), data, plane, checkpoint=path, **OPTIONS)
    with pytest.raises(
        IncompatibleFileError,
        match=r"checkpoint .*dtype: 'float32' in the checkpoint, 'float64' now",
    ):
        compute_loss_grid(copy.deepcopy(model).double(), data, plane, checkpoint=path, **OPTIONS)
    assert path.read_bytes() == before  # never mixed in, never overwritten


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path) -> None:
    model, data = model_and_data()
    plane = random_plane(model)
    grid_file = compute_loss_grid(model, data, plane, **OPTIONS).save(tmp_path / "grid.npz")
    with pytest.raises(IncompatibleFileError, match=r"Cannot resume from checkpoint: .*LossGrid"):
        compute_loss_grid(model, data, plane, checkpoint=grid_file, **OPTIONS)
    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(pickle.dumps({"done": True}))
    with pytest.raises(IncompatibleFileError, match=r"Cannot resume from checkpoint: .*pickle"):
        compute_loss_grid(model, data, plane, checkpoint=pickled, **OPTIONS)
