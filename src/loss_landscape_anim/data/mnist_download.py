"""Downloading the MNIST training files: each mirror in turn, streamed to a temporary file that is
moved into place only once its MD5 matches the published one."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from .._validate import check_positive_number
from ..errors import DataError

__all__ = [
    "DOWNLOAD_TIMEOUT_S",
    "MNIST_MIRRORS",
    "MNIST_TRAIN_MD5",
    "MNISTNotFoundError",
    "download_mnist",
]

logger = logging.getLogger(__name__)

MNIST_IMAGES_GZ = "train-images-idx3-ubyte.gz"
MNIST_LABELS_GZ = "train-labels-idx1-ubyte.gz"
_CHUNK_BYTES = 1 << 16

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
"""Base URLs tried in order; a file's URL is the base followed by the file name."""

MNIST_TRAIN_MD5: dict[str, str] = {
    MNIST_IMAGES_GZ: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    MNIST_LABELS_GZ: "d53e105ee54ea40749a09fcbcd1e9432",
}
"""MD5 of each published ``.gz`` file (the values torchvision checks)."""

DOWNLOAD_TIMEOUT_S = 30.0
"""Seconds a download waits for the server (connecting, or between two reads) before giving up."""


class MNISTNotFoundError(FileNotFoundError):
    """The MNIST IDX files are not on disk and could not be downloaded.

    The message names the files, the folders searched (where to put them) and, when a download was
    tried, why each mirror failed.
    """


def download_mnist(
    folder: str | os.PathLike[str],
    *,
    files: Mapping[str, str] | None = None,
    mirrors: Sequence[str] | None = None,
    timeout: float | None = None,
) -> list[Path]:
    """Download ``files`` (name -> MD5 hex digest) into ``folder``, trying each mirror in turn.

    Defaults (read when called): ``files=MNIST_TRAIN_MD5``, ``mirrors=MNIST_MIRRORS``,
    ``timeout=DOWNLOAD_TIMEOUT_S`` seconds. A mirror is a base URL (``https://``, ``http://`` or
    ``file://``) that the file name is appended to. A file already in ``folder`` with the right MD5
    is kept. Each file is written to a temporary file in ``folder`` and moved into place only once
    its MD5 matches, so a failed or corrupt download leaves nothing behind: ``folder`` (and its
    missing parents) is created only once a server answers, and removed again when the download
    fails (unless it holds a file already verified). Returns the paths, in
    ``files`` order; raises ``MNISTNotFoundError`` listing every URL tried and its error when a file
    cannot be fetched from any mirror.
    """
    files = MNIST_TRAIN_MD5 if files is None else files
    mirrors = MNIST_MIRRORS if mirrors is None else mirrors
    timeout = check_positive_number(DOWNLOAD_TIMEOUT_S if timeout is None else timeout, "timeout")
    if not mirrors:
        raise ValueError("Expected at least one mirror URL but got none")
    folder = Path(folder)
    created: list[Path] = []  # folders this call made, removed again if it fails
    paths = []
    try:
        for name, md5 in files.items():
            dest = folder / name
            if not (dest.is_file() and _md5_of_file(dest) == md5.lower()):
                _download_from_mirrors(name, dest, md5, mirrors, timeout, created)
            paths.append(dest)
    except BaseException:
        for made in reversed(created):
            with contextlib.suppress(OSError):  # not empty: it holds a verified file
                made.rmdir()
        raise
    return paths


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns the ones created, outermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        made.mkdir()
    return missing[::-1]


def _download_from_mirrors(
    name: str, dest: Path, md5: str, mirrors: Sequence[str], timeout: float, created: list[Path]
) -> None:
    failures = []
    for mirror in mirrors:
        url = f"{mirror}{name}"
        logger.info("Downloading %s to %s", url, dest)
        try:
            _download_file(url, dest, md5, timeout, created)
        except (OSError, ValueError, http.client.HTTPException) as error:
            logger.warning("Failed to download %s (trying the next mirror if any): %s", url, error)
            failures.append(f"{url}: {error}")
            if isinstance(error, urllib.error.HTTPError):
                error.close()  # it holds the open response
            continue
        return
    raise MNISTNotFoundError(
        f"Could not download {name} into {dest.parent}; " + "; ".join(failures)
    )


def _download_file(url: str, dest: Path, md5: str, timeout: float, created: list[Path]) -> None:
    """Stream ``url`` to a temporary file beside ``dest``; move it there if the MD5 matches.
    The folder is created (and noted in ``created``) only once the server answers."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        created += _make_folders(dest.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        try:
            digest = hashlib.md5(usedforsecurity=False)
            with os.fdopen(fd, "wb") as out:
                while chunk := response.read(_CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != md5.lower():
                raise DataError(
                    f"MD5 checksum mismatch: expected {md5} but got {digest.hexdigest()}"
                )
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def _md5_of_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
