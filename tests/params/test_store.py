"""Tests of the row store (in memory, then spilled to an unlinked file) and of the block readers
the streaming algorithms use."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from loss_landscape_anim.params.blocks import iter_column_blocks, iter_row_blocks
from loss_landscape_anim.params.layout import ParamLayout
from loss_landscape_anim.params.store import RowStore, SpilledRows
from loss_landscape_anim.results import Trajectory

LAYOUT = ParamLayout(("w", "b"), ((2, 3), (2,)))  # 8 parameters


# --- row store ------------------------------------------------------------------------------------


def record(rows: np.ndarray, **options) -> RowStore:
    store = RowStore(rows.shape[1], rows.dtype, **options)
    for row in rows:
        store.append(torch.from_numpy(row))
    return store


@pytest.mark.parametrize("rows_in_memory", [0, 1, 3])
def test_spilled_store_gives_the_same_rows(tmp_path: Path, rows_in_memory: int) -> None:
    rows = np.random.default_rng(0).normal(size=(7, 11)).astype(np.float32)
    in_memory = record(rows)
    spilled = record(rows, memory_limit=rows_in_memory * 11 * 4, spill_dir=tmp_path)
    # spilled to a file in the folder it was given, unlinked at once (the open file keeps it)
    assert os.listdir(tmp_path) == []
    target = os.readlink(f"/proc/self/fd/{spilled.rows().file.fileno()}")
    assert target.startswith(str(tmp_path)) and target.endswith("(deleted)")
    assert len(spilled) == len(in_memory) == 7
    a, b = in_memory.rows(), spilled.rows()
    assert not isinstance(a, np.memmap)
    assert isinstance(b, SpilledRows) and b.file is not None
    assert b[1:3].file is None  # a view does not own the file
    assert not b.flags.writeable
    assert b.dtype == np.float32 and b.shape == (7, 11)
    np.testing.assert_array_equal(a, rows)
    np.testing.assert_array_equal(b, rows)
    assert os.listdir(tmp_path) == []  # the mapping stays valid without a name
    assert spilled.spilled and not in_memory.spilled


def test_store_stays_in_memory_up_to_the_limit(tmp_path: Path) -> None:
    rows = np.ones((3, 4), np.float32)
    recorder = record(rows, memory_limit=3 * 4 * 4, spill_dir=tmp_path)
    assert os.listdir(tmp_path) == []
    assert not isinstance(recorder.rows(), np.memmap)


def test_store_copies_rows() -> None:
    recorder = RowStore(3)
    row = torch.zeros(3)
    recorder.append(row)
    row += 1
    np.testing.assert_array_equal(recorder.rows(), np.zeros((1, 3)))


def test_trajectory_from_spilled_rows_saves(tmp_path: Path) -> None:
    rows = np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)
    spilled = record(rows, memory_limit=0, spill_dir=tmp_path).rows()
    t = Trajectory(spilled, np.zeros(4), np.zeros(4), np.arange(4), LAYOUT)
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
    params = record(rows, memory_limit=0, spill_dir=tmp_path).rows()
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spilled_rows_keep_their_dtype_and_read_back_exactly(tmp_path: Path, dtype: type) -> None:
    rows = (np.random.default_rng(5).normal(size=(6, 13)) / 7).astype(dtype)
    params = record(rows, memory_limit=2 * 13 * np.dtype(dtype).itemsize, spill_dir=tmp_path).rows()
    assert isinstance(params, SpilledRows) and params.dtype == dtype
    np.testing.assert_array_equal(
        np.hstack([b for _, _, b in iter_column_blocks(params, 40)]), rows
    )
    np.testing.assert_array_equal(np.vstack([b for _, _, b in iter_row_blocks(params, 40)]), rows)


def test_the_spill_dir_is_checked_when_the_store_is_made(tmp_path: Path) -> None:
    from loss_landscape_anim.params.store import check_spill_dir

    assert check_spill_dir(None) is None
    assert check_spill_dir(tmp_path) == tmp_path
    assert os.listdir(tmp_path) == []  # the probe file leaves nothing behind
    a_file = tmp_path / "rows"
    a_file.write_bytes(b"")
    with pytest.raises(
        ValueError, match=r"Expected spill_dir to be an existing folder but .*rows' is not a folder"
    ):
        RowStore(4, spill_dir=a_file)
    with pytest.raises(ValueError, match="does not exist"):
        RowStore(4, spill_dir=tmp_path / "missing")
    with pytest.raises(TypeError, match="Expected spill_dir to be a folder path"):
        RowStore(4, spill_dir=b"/tmp")  # type: ignore[arg-type]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_folder_no_file_can_be_made_in_is_refused_as_spill_dir() -> None:
    # /proc takes no new files, whoever runs the test (root ignores permission bits)
    with pytest.raises(
        ValueError,
        match="Expected spill_dir to be a folder files can be created in but creating one in '/proc' failed",
    ):
        RowStore(4, spill_dir="/proc")
