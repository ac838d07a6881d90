"""The MNIST training set as a data module, read straight from the published IDX files.

No torchvision: the two files ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``
(gzipped or not) are parsed with numpy, and downloaded (``.gz``, MD5-checked) from a list of
mirrors when missing. The images are padded from 28 x 28 to 32 x 32, the input size of LeNet-5
(LeCun et al., "Gradient-based learning applied to document recognition", Proc. IEEE 1998), and
normalised with the MNIST training set's pixel mean and standard deviation.

Errors: files that cannot be found or downloaded raise :class:`MNISTNotFoundError` (a
``FileNotFoundError``, so an ``OSError``); a file that is found but is not a valid MNIST IDX file
raises the package's :class:`~loss_landscape_anim.errors.DataError` (a ``ValueError``) naming that
file.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .._validate import check_optional_positive_int
from ..errors import DataError
from . import mnist_download
from .mnist_download import (
    DOWNLOAD_TIMEOUT_S,
    MNIST_MIRRORS,
    MNIST_TRAIN_MD5,
    MNISTNotFoundError,
    download_mnist,
)
from .modules import DataModule

__all__ = [
    "DOWNLOAD_TIMEOUT_S",
    "MNIST_IMAGES_FILE",
    "MNIST_LABELS_FILE",
    "MNIST_MEAN",
    "MNIST_MIRRORS",
    "MNIST_STD",
    "MNIST_TRAIN_MD5",
    "MNISTDataModule",
    "MNISTNotFoundError",
    "download_mnist",
    "find_mnist_files",
    "load_mnist",
    "locate_mnist",
    "mnist_folders",
    "preprocess_mnist",
    "read_idx_images",
    "read_idx_labels",
]

logger = logging.getLogger(__name__)

MNIST_IMAGES_FILE = "train-images-idx3-ubyte"
"""Name of the uncompressed training-images IDX file (the download adds ``.gz``)."""
MNIST_LABELS_FILE = "train-labels-idx1-ubyte"
"""Name of the uncompressed training-labels IDX file (the download adds ``.gz``)."""

MNIST_MEAN = 0.1307
"""Mean pixel value of the MNIST training images, on the [0, 1] scale."""
MNIST_STD = 0.3081
"""Standard deviation of the MNIST training pixels, on the [0, 1] scale."""

IMAGE_SIDE = 28
"""Side of an MNIST image in the IDX file, in pixels."""
PAD = 2
"""Zero pixels added on each side, so images reach the 32 x 32 that LeNet-5 expects."""

_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
_NUM_CLASSES = 10


# --- reading -------------------------------------------------------------------------------------


def read_idx_images(path: str | os.PathLike[str]) -> np.ndarray:
    """The images of an IDX3 file (``.gz`` or not) as a uint8 array of shape (N, 28, 28).

    Pixel values are 0 (background) to 255 (ink), as stored. Raises ``DataError`` naming the file
    when its magic number is not 2051, an image is not 28 x 28, or its length does not match the
    header.
    """
    path = Path(path)
    images = _parse_idx(_read_bytes(path), magic=_IMAGES_MAGIC, ndim=3, path=path)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(
            f"Expected {IMAGE_SIDE} x {IMAGE_SIDE} images in {path} but the header says "
            f"{images.shape[1]} x {images.shape[2]}"
        )
    return images


def read_idx_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """The labels of an IDX1 file (``.gz`` or not) as a uint8 array of shape (N,), values 0 to 9.

    Raises ``DataError`` naming the file when its magic number is not 2049, its length does not
    match the header, or a label is outside 0-9.
    """
    path = Path(path)
    labels = _parse_idx(_read_bytes(path), magic=_LABELS_MAGIC, ndim=1, path=path)
    if labels.size and int(labels.max()) >= _NUM_CLASSES:
        raise DataError(
            f"Expected labels 0 to {_NUM_CLASSES - 1} in {path} but found {int(labels.max())}"
        )
    return labels


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when its name ends in ``.gz``."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataError(f"Expected a gzip-compressed IDX file at {path} but: {error}") from error


def _parse_idx(raw: bytes, *, magic: int, ndim: int, path: Path) -> np.ndarray:
    """The uint8 array of an IDX file's bytes: a big-endian header (magic, then ``ndim`` sizes)."""
    header_bytes = 4 * (1 + ndim)
    if len(raw) < header_bytes:
        raise DataError(
            f"Expected an IDX file of at least {header_bytes} header bytes at {path} "
            f"but it has {len(raw)} bytes"
        )
    header = np.frombuffer(raw, dtype=">u4", count=1 + ndim)
    if int(header[0]) != magic:
        raise DataError(
            f"Expected magic number {magic} at the start of {path} but got {int(header[0])}: "
            "not an MNIST IDX file of this kind (images are 2051, labels 2049)"
        )
    shape = tuple(int(size) for size in header[1:])
    expected = header_bytes + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise DataError(
            f"Expected {expected} bytes in {path} (a header for shape {shape}) "
            f"but it has {len(raw)} bytes: the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_bytes).reshape(shape)


# --- finding and downloading ---------------------------------------------------------------------


def mnist_folders(data_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The folders searched, in order: ``data_dir``, then ``data_dir/MNIST/raw`` (torchvision's)."""
    data_dir = Path(data_dir)
    return data_dir, data_dir / "MNIST" / "raw"


def find_mnist_files(data_dir: str | os.PathLike[str]) -> tuple[Path | None, Path | None]:
    """Paths of the training images and labels files under ``data_dir``, or None for a missing one.

    Each is looked up in ``data_dir`` and then ``data_dir/MNIST/raw``, uncompressed before ``.gz``.
    """
    return _find(data_dir, MNIST_IMAGES_FILE), _find(data_dir, MNIST_LABELS_FILE)


def _find(data_dir: str | os.PathLike[str], name: str) -> Path | None:
    for folder in mnist_folders(data_dir):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _missing_message(
    data_dir: Path, missing: Sequence[str], download_error: Exception | None
) -> str:
    here, raw = mnist_folders(data_dir)
    message = (
        f"MNIST files not found: {' and '.join(missing)}. Put {MNIST_IMAGES_FILE} and "
        f"{MNIST_LABELS_FILE} (or their .gz versions) in {here} or in {raw}"
    )
    if download_error is None:
        return message + ", or pass download=True to download them"
    return message + f". The download failed: {download_error}"


def locate_mnist(data_dir: str | os.PathLike[str], *, download: bool = True) -> tuple[Path, Path]:
    """Paths of the training images and labels files, downloading missing ones when ``download``.

    Downloads land in ``data_dir/MNIST/raw`` as ``.gz`` files. Raises ``MNISTNotFoundError`` naming
    both files and both folders searched when a file is missing and cannot be downloaded.
    """
    data_dir = Path(data_dir)
    images, labels = find_mnist_files(data_dir)
    missing = [
        name
        for name, path in ((MNIST_IMAGES_FILE, images), (MNIST_LABELS_FILE, labels))
        if path is None
    ]
    if not missing:
        return images, labels  # type: ignore[return-value]
    if not download:
        raise MNISTNotFoundError(_missing_message(data_dir, missing, None))
    published = mnist_download.MNIST_TRAIN_MD5  # read when called, so it can be replaced
    wanted = {f"{name}.gz": published[f"{name}.gz"] for name in missing}
    try:
        download_mnist(mnist_folders(data_dir)[1], files=wanted)
    except MNISTNotFoundError as error:
        raise MNISTNotFoundError(_missing_message(data_dir, missing, error)) from error
    images, labels = find_mnist_files(data_dir)
    if images is None or labels is None:  # pragma: no cover - download_mnist wrote them
        raise MNISTNotFoundError(_missing_message(data_dir, missing, None))
    return images, labels


# --- preprocessing -------------------------------------------------------------------------------


def preprocess_mnist(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    pad: int = PAD,
    mean: float = MNIST_MEAN,
    std: float = MNIST_STD,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Network-ready tensors from raw uint8 images (N, H, W) and labels (N,).

    Pixels are scaled to [0, 1] (divided by 255), padded with ``pad`` zero pixels on each side, then
    normalised as ``(x - mean) / std``. Returns ``X`` float32 of shape (N, 1, H + 2 pad, W + 2 pad)
    and ``y`` int64 of shape (N,).
    """
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"Expected as many images as labels but got {images.shape[0]} images "
            f"and {labels.shape[0]} labels"
        )
    scaled = images.astype(np.float32) / np.float32(255.0)
    padded = np.pad(scaled, ((0, 0), (pad, pad), (pad, pad)), mode="constant")
    normalised = (padded - np.float32(mean)) / np.float32(std)
    X = torch.from_numpy(np.ascontiguousarray(normalised[:, None], dtype=np.float32))
    y = torch.from_numpy(labels.astype(np.int64))
    return X, y


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    n_examples: int | None = None,
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n_examples`` (None: all 60,000) MNIST training examples, preprocessed.

    ``data_dir`` (default: the current directory) is searched, and downloaded into, as described in
    :func:`locate_mnist`. Returns ``X`` float32 (N, 1, 32, 32), normalised, and ``y`` int64 (N,).
    """
    n_examples = check_optional_positive_int(n_examples, "n_examples")
    data_dir = Path.cwd() if data_dir is None else Path(data_dir)
    images_path, labels_path = locate_mnist(data_dir, download=download)
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"Expected as many images as labels but {images_path} has {images.shape[0]} "
            f"and {labels_path} has {labels.shape[0]}"
        )
    if n_examples is not None:
        if n_examples > images.shape[0]:
            raise DataError(
                f"Expected n_examples to be at most the {images.shape[0]} examples in "
                f"{images_path} but got {n_examples}"
            )
        images, labels = images[:n_examples], labels[:n_examples]
    return preprocess_mnist(images, labels)


class MNISTDataModule(DataModule):
    """The first ``n_examples`` MNIST training digits as a data module, for LeNet-5-style models.

    Reads ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (or their ``.gz``) from
    ``data_dir`` or ``data_dir/MNIST/raw``; ``data_dir`` defaults to the current directory,
    resolved at construction. Missing files are downloaded into ``data_dir/MNIST/raw`` when
    ``download`` is True (see :func:`download_mnist`), else ``MNISTNotFoundError`` is raised; a
    malformed file raises ``DataError``. ``dataset`` holds ``X`` float32 (N, 1, 32, 32), padded with
    background then normalised with mean 0.1307 and std 0.3081, and ``y`` int64 labels 0-9.
    ``batch_size=None`` means full batch.
    """

    def __init__(
        self,
        batch_size: int | None = 16,
        n_examples: int | None = 3000,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        download: bool = True,
        shuffle: bool = True,
        num_workers: int = 0,
    ):
        super().__init__(batch_size, shuffle=shuffle, num_workers=num_workers)
        self.n_examples = check_optional_positive_int(n_examples, "n_examples")
        if not isinstance(download, bool):
            raise TypeError(f"Expected download to be True or False but got {download!r}")
        self.data_dir = (Path.cwd() if data_dir is None else Path(data_dir)).expanduser().resolve()
        self.download = download
        X, y = load_mnist(self.data_dir, n_examples=self.n_examples, download=download)
        self.dataset = TensorDataset(X, y)
        self.input_dim = (1, IMAGE_SIDE + 2 * PAD, IMAGE_SIDE + 2 * PAD)
        self.num_classes = _NUM_CLASSES
