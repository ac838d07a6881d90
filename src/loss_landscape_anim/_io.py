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
from collections.abc import Iterator
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


def load_npz(path: str | os.PathLike, kind: str) -> tuple[dict[str, np.ndarray], dict]:
    """Read a file written by :func:`save_npz` for a result of ``kind``; never unpickles."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {str(path)!r}")
    check_not_pickle(path, expected="an .npz archive written by loss_landscape_anim")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except ValueError as exc:  # object arrays inside refuse to load without pickle
        raise UnsafeFileError(f"Refusing to load {str(path)!r}: {exc}") from None
    raw = arrays.pop(_META_KEY, None)
    if raw is None:
        raise IncompatibleFileError(
            f"{str(path)!r} is an .npz archive but not a loss_landscape_anim result (no metadata)"
        )
    meta = json.loads(raw.tobytes().decode())
    if meta.get("kind") != kind:
        raise IncompatibleFileError(
            f"Expected {str(path)!r} to hold a {kind} but it holds a {meta.get('kind')!r}"
        )
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise IncompatibleFileError(
            f"{str(path)!r} was written by a newer version (format {meta['format_version']}); "
            f"this version reads format {FORMAT_VERSION} and older"
        )
    return arrays, meta


def check_not_pickle(path: Path, *, expected: str) -> None:
    """Raise :class:`UnsafeFileError` unless ``path`` starts like a zip archive."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != _ZIP_MAGIC:
        what = "a pickle" if head[:1] == b"\x80" else "not a zip archive"
        raise UnsafeFileError(
            f"Refusing to load {str(path)!r}: expected {expected}, but the file is {what}. "
            "Files are never unpickled, since that can run code."
        )
