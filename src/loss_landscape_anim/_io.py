"""Files: atomic writes and data-only ``.npz`` results.

Every file the package writes goes to a temporary file in the destination folder and is renamed into
place, so a failure or a kill mid-write never leaves a truncated file and keeps any earlier file.
Results are ``.npz`` archives of plain arrays plus one JSON metadata entry, read back with
``allow_pickle=False``: loading one of our files cannot run code.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IncompatibleFileError, UnsafeFileError

FORMAT_VERSION = 1
_META_KEY = "__meta__"
_ZIP_MAGIC = b"PK\x03\x04"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, else delete it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def save_npz(path: str | os.PathLike, kind: str, arrays: dict[str, Any], meta: dict) -> Path:
    """Write ``arrays`` and JSON ``meta`` as an uncompressed ``.npz``, atomically."""
    meta = {"kind": kind, "format_version": FORMAT_VERSION, **meta}
    payload = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
    for name, value in payload.items():
        if value.dtype == object:
            raise TypeError(f"Cannot save {name!r}: object arrays would need pickle")
    payload[_META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **payload)  # type: ignore[arg-type]
    return Path(path)


def load_npz(
    path: str | os.PathLike,
    kind: str,
    *,
    arrays: Iterable[str] = (),
    meta: Iterable[str] = (),
) -> tuple[dict[str, np.ndarray], dict]:
    """Read a file written by :func:`save_npz` for a result of ``kind``; never unpickles.

    ``arrays`` and ``meta`` name the entries the result needs. Raises ``FileNotFoundError`` for a
    missing file, :class:`UnsafeFileError` for a file that is not a data-only archive (a pickle),
    and :class:`IncompatibleFileError`, naming the file and the fault, for a directory, a damaged
    archive (truncated, bad checksum), unreadable metadata, another kind of result, a newer
    format or a missing entry.
    """
    path = Path(path)
    if path.is_dir():
        raise IncompatibleFileError(
            f"Expected {str(path)!r} to be a {kind} file but it is a directory"
        )
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {str(path)!r}")
    check_not_pickle(path, expected="an .npz archive written by loss_landscape_anim")
    try:
        # Through our own handle: numpy leaks the one it opens when the archive is damaged.
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as archive:
            loaded = {k: archive[k] for k in archive.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # object arrays refuse to load without pickle
            raise UnsafeFileError(f"Refusing to load {str(path)!r}: {exc}") from None
        raise damaged(path, exc) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError) as exc:
        raise damaged(path, exc) from None
    header = _read_meta(path, loaded.pop(_META_KEY, None))
    if header.get("kind") != kind:
        raise IncompatibleFileError(
            f"Expected {str(path)!r} to hold a {kind} but it holds a {header.get('kind')!r}"
        )
    version = header.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise damaged(path, f"format_version is {version!r}, not an integer")
    if version > FORMAT_VERSION:
        raise IncompatibleFileError(
            f"{str(path)!r} was written by a newer version (format {version}); "
            f"this version reads format {FORMAT_VERSION} and older"
        )
    missing = [f"array {k!r}" for k in arrays if k not in loaded]
    missing += [f"metadata {k!r}" for k in meta if k not in header]
    if missing:
        raise IncompatibleFileError(
            f"{str(path)!r} is not a complete {kind}: it lacks {', '.join(missing)}"
        )
    return loaded, header


def _read_meta(path: Path, raw: np.ndarray | None) -> dict:
    """The JSON metadata entry of an archive, as a dict."""
    if raw is None:
        raise IncompatibleFileError(
            f"{str(path)!r} is an .npz archive but not a loss_landscape_anim result (no metadata)"
        )
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise damaged(path, f"its metadata is a {raw.dtype} array of shape {raw.shape}")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise damaged(path, f"its metadata is not UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise damaged(path, f"its metadata is a JSON {type(header).__name__}, not an object")
    return header


def damaged(path: str | os.PathLike, reason: object) -> IncompatibleFileError:
    """The error for a file that cannot be read back: truncated, corrupt or inconsistent."""
    return IncompatibleFileError(f"{str(path)!r} is damaged or inconsistent: {reason}")


@contextlib.contextmanager
def reading(path: str | os.PathLike) -> Iterator[None]:
    """Turn the ``ValueError``/``TypeError`` of building a result from the arrays of ``path``
    (wrong shapes, dtypes, non-finite values, malformed metadata) into an
    :class:`IncompatibleFileError` naming the file."""
    try:
        yield
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise damaged(path, exc) from None


def check_output_path(path: str | os.PathLike, name: str) -> Path:
    """``path`` as a ``Path``, if a file can be written there: it is not a folder, and its folder
    exists or can be created (the nearest existing ancestor is a writable folder). Nothing is
    created; raises ``ValueError`` naming the argument ``name``."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise ValueError(f"Expected {name} to be a file path but got {str(path)!r}")
    if path.is_dir():
        raise ValueError(f"Expected {name} to be a file path but {str(path)!r} is a directory")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        if folder.is_symlink():  # a dangling link: mkdir would fail
            break
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"Cannot write {name} {str(path)!r}: {str(folder)!r} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(
            f"Cannot write {name} {str(path)!r}: the folder {str(folder)!r} is not writable"
        )
    return path


def check_not_pickle(path: Path, *, expected: str) -> None:
    """Raise :class:`UnsafeFileError` unless ``path`` starts like a zip archive
    (:class:`IncompatibleFileError` when it is too short to tell: empty or truncated)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if len(head) < len(_ZIP_MAGIC):
        raise damaged(path, f"it holds {len(head)} bytes (empty or truncated)")
    if head != _ZIP_MAGIC:
        what = "a pickle" if head[:1] == b"\x80" else "not a zip archive"
        raise UnsafeFileError(
            f"Refusing to load {str(path)!r}: expected {expected}, but the file is {what}. "
            "Files are never unpickled, since that can run code."
        )
