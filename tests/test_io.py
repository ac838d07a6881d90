"""Tests of atomic writes and the data-only ``.npz`` result format."""

from __future__ import annotations

import json
import os
import pickle
import re
import stat
from pathlib import Path

import numpy as np
import pytest

from loss_landscape_anim._io import (
    FORMAT_VERSION,
    atomic_path,
    check_output_path,
    load_npz,
    save_npz,
    write_bytes_atomic,
)
from loss_landscape_anim.errors import IncompatibleFileError, UnsafeFileError


class Armed:
    """Unpickling this object creates ``marker``: proof that loading ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_armed_pickle_runs_code_when_unpickled(tmp_path: Path) -> None:
    # Guard for the tests below: the payload really would create the marker if unpickled.
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(Armed(marker))).close()
    assert marker.exists()


def test_atomic_path_replaces_the_file_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "result.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp != target
        tmp.write_bytes(b"new")
        assert not target.exists()
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert os.listdir(target.parent) == ["result.bin"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_path_keeps_earlier_file_and_leaves_no_temp_on_error(
    tmp_path: Path, error: type[BaseException]
) -> None:
    target = tmp_path / "result.bin"
    target.write_bytes(b"earlier")
    with pytest.raises(error, match="mid-write"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise error("mid-write")
    assert target.read_bytes() == b"earlier"
    assert os.listdir(tmp_path) == ["result.bin"]


def test_write_bytes_atomic(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    assert write_bytes_atomic(target, b"abc") == target
    assert target.read_bytes() == b"abc"


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    arrays = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
        "i64": np.array([3, -1, 2**40], dtype=np.int64),
        "flag": np.array([True, False]),
        "nan": np.array([np.nan, 1.0]),
        "skipped": None,
    }
    meta = {"method": "pca", "nested": {"shape": [2, 3]}}
    path = save_npz(tmp_path / "r.npz", "Thing", arrays, meta)
    loaded, loaded_meta = load_npz(path, "Thing")
    assert set(loaded) == {"f32", "i64", "flag", "nan"}
    for name in loaded:
        assert loaded[name].dtype == arrays[name].dtype
        np.testing.assert_array_equal(loaded[name], arrays[name])
    assert loaded_meta == {"kind": "Thing", "format_version": FORMAT_VERSION, **meta}


def test_saved_file_opens_without_pickle(tmp_path: Path) -> None:
    path = save_npz(tmp_path / "r.npz", "Thing", {"a": np.ones(3)}, {})
    with np.load(path, allow_pickle=False) as archive:
        assert set(archive.files) == {"a", "__meta__"}
        assert json.loads(archive["__meta__"].tobytes())["kind"] == "Thing"


def test_pickle_file_is_refused_without_running_it(tmp_path: Path) -> None:
    path = tmp_path / "result.npz"
    marker = tmp_path / "marker"
    path.write_bytes(pickle.dumps({"params": Armed(marker)}))
    with pytest.raises(
        UnsafeFileError,
        match=re.escape(repr(str(path))) + r".*the file is a pickle\. Files are never unpickled",
    ):
        load_npz(path, "Trajectory")
    assert not marker.exists()


def test_object_array_inside_npz_is_refused_without_running_it(tmp_path: Path) -> None:
    path = tmp_path / "result.npz"
    marker = tmp_path / "marker"
    np.savez(path, params=np.array([Armed(marker)], dtype=object))
    with pytest.raises(UnsafeFileError, match=re.escape(f"Refusing to load {str(path)!r}")):
        load_npz(path, "Trajectory")
    assert not marker.exists()


def test_non_zip_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "result.npz"
    path.write_text("hello")
    with pytest.raises(UnsafeFileError, match="but the file is not a zip archive"):
        load_npz(path, "Trajectory")


def test_wrong_kind_is_incompatible(tmp_path: Path) -> None:
    path = save_npz(tmp_path / "plane.npz", "Plane", {"a": np.zeros(2)}, {})
    with pytest.raises(
        IncompatibleFileError,
        match=re.escape(f"Expected {str(path)!r} to hold a Trajectory but it holds a 'Plane'"),
    ):
        load_npz(path, "Trajectory")


def test_foreign_npz_is_incompatible(tmp_path: Path) -> None:
    path = tmp_path / "foreign.npz"
    np.savez(path, a=np.zeros(2))
    with pytest.raises(IncompatibleFileError, match="not a loss_landscape_anim result"):
        load_npz(path, "Trajectory")


def test_newer_format_is_incompatible(tmp_path: Path) -> None:
    path = save_npz(tmp_path / "r.npz", "Thing", {}, {"format_version": FORMAT_VERSION + 1})
    with pytest.raises(
        IncompatibleFileError, match=f"newer version \\(format {FORMAT_VERSION + 1}\\)"
    ):
        load_npz(path, "Thing")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=re.escape(repr(str(path)))):
        load_npz(path, "Thing")


def test_object_arrays_are_not_saved(tmp_path: Path) -> None:
    path = tmp_path / "r.npz"
    with pytest.raises(TypeError, match="Cannot save 'bad': object arrays would need pickle"):
        save_npz(path, "Thing", {"ok": np.zeros(2), "bad": np.array([{}, 1], dtype=object)}, {})
    assert os.listdir(tmp_path) == []


# -- damaged files: refused with our own error, naming the file and the fault ------------------


def saved(tmp_path: Path) -> Path:
    return save_npz(tmp_path / "r.npz", "Thing", {"a": np.arange(4000.0)}, {"x": 1})


def with_meta(tmp_path: Path, raw: bytes) -> Path:
    """An archive like ours whose metadata entry holds ``raw``."""
    path = tmp_path / "m.npz"
    np.savez(path, a=np.zeros(2), __meta__=np.frombuffer(raw, dtype=np.uint8))
    return path


@pytest.mark.parametrize(
    ("damage", "fault"),
    [
        (lambda raw: raw[: len(raw) // 2], "File is not a zip file"),
        (lambda raw: raw[:-10], "File is not a zip file"),
        (lambda raw: raw[:300] + bytes(300) + raw[600:], "Bad CRC-32"),
        (lambda raw: raw[:3], "it holds 3 bytes \\(empty or truncated\\)"),
        (lambda raw: b"", "it holds 0 bytes"),
    ],
)
def test_a_damaged_archive_is_incompatible_and_named(tmp_path: Path, damage, fault) -> None:
    path = saved(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(
        IncompatibleFileError,
        match=re.escape(f"{str(path)!r} is damaged or inconsistent: ") + fault,
    ):
        load_npz(path, "Thing")


@pytest.mark.parametrize(
    ("raw", "fault"),
    [
        (b"\xff\xfe{}", "its metadata is not UTF-8 JSON"),
        (b"{not json", "its metadata is not UTF-8 JSON"),
        (json.dumps([1, 2]).encode(), "its metadata is a JSON list, not an object"),
        (json.dumps({"kind": "Thing", "format_version": "1"}).encode(), "format_version is '1'"),
    ],
)
def test_unreadable_metadata_is_incompatible(tmp_path: Path, raw: bytes, fault: str) -> None:
    path = with_meta(tmp_path, raw)
    with pytest.raises(IncompatibleFileError, match=re.escape(fault)):
        load_npz(path, "Thing")


def test_missing_entries_are_named(tmp_path: Path) -> None:
    path = saved(tmp_path)
    with pytest.raises(
        IncompatibleFileError,
        match=re.escape(f"{str(path)!r} is not a complete Thing: it lacks array 'b', metadata 'y'"),
    ):
        load_npz(path, "Thing", arrays=("a", "b"), meta=("x", "y"))
    arrays, meta = load_npz(path, "Thing", arrays=("a",), meta=("x",))
    assert arrays["a"].shape == (4000,) and meta["x"] == 1


def test_a_directory_is_named_as_such(tmp_path: Path) -> None:
    folder = tmp_path / "r.npz"
    folder.mkdir()
    with pytest.raises(IncompatibleFileError, match="to be a Thing file but it is a directory"):
        load_npz(folder, "Thing")


def test_check_output_path_accepts_new_and_existing_files(tmp_path: Path) -> None:
    (tmp_path / "old.gif").write_bytes(b"x")
    for target in (tmp_path / "old.gif", tmp_path / "new" / "deeper" / "a.gif", Path("a.gif")):
        assert check_output_path(target, "output") == target
    assert sorted(os.listdir(tmp_path)) == ["old.gif"]  # nothing created


def test_check_output_path_refuses_what_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "dir.gif").mkdir()
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ValueError, match=r"Expected output to be a file path but '.*dir\.gif' is"):
        check_output_path(tmp_path / "dir.gif", "output")
    with pytest.raises(
        ValueError, match=r"Cannot write output '.*file/sub/a\.gif': '.*file' is not"
    ):
        check_output_path(tmp_path / "file" / "sub" / "a.gif", "output")
    with pytest.raises(ValueError, match=r"Expected output to be a file path but got '\.'"):
        check_output_path(".", "output")
    assert sorted(os.listdir(tmp_path)) == ["dir.gif", "file"]
