"""Tests of ``Trajectory`` (validation, save/load), the recorder that spills to disk, and the
block readers the streaming algorithms use."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from loss_landscape_anim._io import save_npz
from loss_landscape_anim._layout import ParamLayout
from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.trajectory import (
    Trajectory,
    TrajectoryRecorder,
    iter_column_blocks,
    iter_row_blocks,
)

LAYOUT = ParamLayout(("w", "b"), ((2, 3), (2,)))  # 8 parameters


def make_trajectory(T: int = 5, seed: int = 0) -> Trajectory:
    rng = np.random.default_rng(seed)
    return Trajectory(
        params=rng.normal(size=(T, 8)).astype(np.float32),
        loss=rng.uniform(size=T),
        accuracy=np.r_[rng.uniform(size=T - 1), np.nan],
        steps=np.arange(T, dtype=np.int64) * 3,
        layout=LAYOUT,
        optimizer="sgd",
        learning_rate=0.25,
        diverged=True,
    )


def assert_same(a: Trajectory, b: Trajectory) -> None:
    for name in ("params", "loss", "accuracy", "steps"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y)
    assert a.layout == b.layout
    assert (a.optimizer, a.learning_rate, a.diverged) == (b.optimizer, b.learning_rate, b.diverged)


def test_save_load_round_trip(tmp_path: Path) -> None:
    trajectory = make_trajectory()
    path = trajectory.save(tmp_path / "run" / "trajectory.npz")
    assert path == tmp_path / "run" / "trajectory.npz"
    assert_same(Trajectory.load(path), trajectory)


def test_round_trip_of_default_metadata(tmp_path: Path) -> None:
    t = make_trajectory()
    plain = Trajectory(t.params, t.loss, t.accuracy, t.steps, t.layout)
    loaded = Trajectory.load(plain.save(tmp_path / "t.npz"))
    assert loaded.optimizer == ""
    assert np.isnan(loaded.learning_rate)
    assert loaded.diverged is False


def test_load_refuses_another_kind(tmp_path: Path) -> None:
    path = save_npz(tmp_path / "g.npz", "LossGrid", {"loss": np.zeros((2, 2))}, {})
    with pytest.raises(
        IncompatibleFileError, match="to hold a Trajectory but it holds a 'LossGrid'"
    ):
        Trajectory.load(path)


def test_accessors() -> None:
    t = make_trajectory()
    assert len(t) == 5
    assert t.n_params == 8
    np.testing.assert_array_equal(t.final_params, t.params[-1])
    state = t.state_dict(1)
    assert state["w"].shape == (2, 3) and state["b"].shape == (2,)
    np.testing.assert_array_equal(state["w"].numpy().ravel(), t.params[1, :6])
    np.testing.assert_array_equal(state["b"].numpy(), t.params[1, 6:])
    state["w"].zero_()  # new tensors: the trajectory is not changed
    assert np.any(t.params[1, :6] != 0)


def test_rejects_params_of_the_wrong_width() -> None:
    t = make_trajectory()
    with pytest.raises(ValueError, match=r"Expected params of shape \(T, 8\) but got \(5, 7\)"):
        Trajectory(t.params[:, :7], t.loss, t.accuracy, t.steps, t.layout)
    with pytest.raises(ValueError, match=r"Expected params of shape \(T, 8\) but got \(8,\)"):
        Trajectory(t.params[0], t.loss, t.accuracy, t.steps, t.layout)


@pytest.mark.parametrize("name", ["loss", "accuracy", "steps"])
def test_rejects_columns_of_the_wrong_length(name: str) -> None:
    t = make_trajectory()
    fields = {"loss": t.loss, "accuracy": t.accuracy, "steps": t.steps}
    fields[name] = fields[name][:4]
    with pytest.raises(ValueError, match=rf"Expected {name} of shape \(5,\) but got \(4,\)"):
        Trajectory(t.params, layout=t.layout, **fields)


def test_rejects_an_empty_trajectory() -> None:
    empty = np.zeros(0)
    with pytest.raises(ValueError, match="at least one recorded step"):
        Trajectory(np.zeros((0, 8), np.float32), empty, empty, empty, LAYOUT)


# --- recorder ------------------------------------------------------------------------------------


def record(rows: np.ndarray, **options) -> TrajectoryRecorder:
    recorder = TrajectoryRecorder(rows.shape[1], **options)
    for t, row in enumerate(rows):
        recorder.append(torch.from_numpy(row), loss=0.5 * t, accuracy=t / 10, step=2 * t)
    return recorder


@pytest.mark.parametrize("rows_in_memory", [0, 1, 3])
def test_spilled_recorder_gives_the_same_rows(tmp_path: Path, rows_in_memory: int) -> None:
    rows = np.random.default_rng(0).normal(size=(7, 11)).astype(np.float32)
    in_memory = record(rows)
    spilled = record(rows, memory_limit=rows_in_memory * 11 * 4, spill_dir=tmp_path)
    # spilled to a file in the folder it was given, unlinked at once (the open file keeps it)
    assert os.listdir(tmp_path) == []
    target = os.readlink(f"/proc/self/fd/{spilled._file.fileno()}")
    assert target.startswith(str(tmp_path)) and target.endswith("(deleted)")
    assert len(spilled) == len(in_memory) == 7
    a, b = in_memory.params(), spilled.params()
    assert not isinstance(a, np.memmap)
    assert isinstance(b, np.memmap)
    assert not b.flags.writeable
    assert b.dtype == np.float32 and b.shape == (7, 11)
    np.testing.assert_array_equal(a, rows)
    np.testing.assert_array_equal(b, rows)
    assert os.listdir(tmp_path) == []  # the mapping stays valid without a name
    assert spilled.loss == in_memory.loss == [0.5 * t for t in range(7)]
    assert spilled.steps == in_memory.steps == [2 * t for t in range(7)]


def test_recorder_stays_in_memory_up_to_the_limit(tmp_path: Path) -> None:
    rows = np.ones((3, 4), np.float32)
    recorder = record(rows, memory_limit=3 * 4 * 4, spill_dir=tmp_path)
    assert os.listdir(tmp_path) == []
    assert not isinstance(recorder.params(), np.memmap)


def test_recorder_copies_rows() -> None:
    recorder = TrajectoryRecorder(3)
    row = torch.zeros(3)
    recorder.append(row, 0.0, 0.0, 0)
    row += 1
    np.testing.assert_array_equal(recorder.params(), np.zeros((1, 3)))


def test_trajectory_from_a_spilled_recorder_saves(tmp_path: Path) -> None:
    rows = np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)
    recorder = record(rows, memory_limit=0, spill_dir=tmp_path)
    t = Trajectory(
        recorder.params(),
        np.array(recorder.loss),
        np.array(recorder.accuracy),
        np.array(recorder.steps),
        LAYOUT,
    )
    loaded = Trajectory.load(t.save(tmp_path / "t.npz"))
    np.testing.assert_array_equal(loaded.params, rows)


# --- block readers -------------------------------------------------------------------------------


def test_column_blocks_reassemble_exactly() -> None:
    params = np.random.default_rng(2).normal(size=(6, 50)).astype(np.float32)
    blocks = list(iter_column_blocks(params, block_bytes=6 * 8 * 7))
    assert [(a, b) for a, b, _ in blocks] == [(k, min(k + 7, 50)) for k in range(0, 50, 7)]
    for _, _, block in blocks:
        assert block.dtype == np.float64
    np.testing.assert_array_equal(np.hstack([b for _, _, b in blocks]), params)


def test_row_blocks_reassemble_exactly() -> None:
    params = np.random.default_rng(3).normal(size=(10, 5)).astype(np.float32)
    blocks = list(iter_row_blocks(params, block_bytes=5 * 8 * 3))
    assert [(a, b) for a, b, _ in blocks] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    np.testing.assert_array_equal(np.vstack([b for _, _, b in blocks]), params)


def test_blocks_of_a_memmap(tmp_path: Path) -> None:
    rows = np.random.default_rng(4).normal(size=(5, 9)).astype(np.float32)
    params = record(rows, memory_limit=0, spill_dir=tmp_path).params()
    cols = np.hstack([b for _, _, b in iter_column_blocks(params, block_bytes=1)])
    np.testing.assert_array_equal(cols, rows)
    np.testing.assert_array_equal(np.vstack([b for _, _, b in iter_row_blocks(params, 1)]), rows)
    np.testing.assert_array_equal(params, rows)  # still readable after pages were released


@settings(max_examples=25, deadline=None)
@given(
    T=st.integers(1, 9), P=st.integers(1, 30), block_bytes=st.integers(1, 3000), seed=st.integers()
)
def test_blocks_reassemble_property(T: int, P: int, block_bytes: int, seed: int) -> None:
    params = np.random.default_rng(abs(seed)).normal(size=(T, P)).astype(np.float32)
    cols = list(iter_column_blocks(params, block_bytes))
    rows = list(iter_row_blocks(params, block_bytes))
    np.testing.assert_array_equal(np.hstack([b for _, _, b in cols]), params)
    np.testing.assert_array_equal(np.vstack([b for _, _, b in rows]), params)
    for blocks in (cols, rows):
        bounds = [(a, b) for a, b, _ in blocks]
        assert bounds[0][0] == 0
        assert all(b0 == a1 for (_, b0), (a1, _) in itertools.pairwise(bounds))
    if block_bytes >= 8 * T:  # more than one column fits: blocks stay within the budget
        assert all(b.nbytes <= block_bytes for _, _, b in cols)
