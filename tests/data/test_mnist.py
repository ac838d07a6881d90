"""Tests of the MNIST data module: IDX parsing, preprocessing, finding and downloading (no network).

Small IDX files are written in the real on-disk format; downloads come from ``file://`` URLs or a
loopback HTTP server.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import logging
import re
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from loss_landscape_anim.data import mnist, mnist_download
from loss_landscape_anim.data.mnist import (
    MNISTDataModule,
    MNISTNotFoundError,
    download_mnist,
    load_mnist,
    read_idx_images,
    read_idx_labels,
)
from loss_landscape_anim.errors import DataError

IMAGES = "train-images-idx3-ubyte"
LABELS = "train-labels-idx1-ubyte"
N = 12


# --- helpers -------------------------------------------------------------------------------------


def idx_images(images: np.ndarray, magic: int = 2051) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", magic, n, rows, cols) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray, magic: int = 2049) -> bytes:
    return struct.pack(">II", magic, len(labels)) + labels.astype(np.uint8).tobytes()


def write(folder: Path, name: str, raw: bytes, *, gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{name}.gz" if gz else name)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def md5(raw: bytes) -> str:
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


def reference(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The expected preprocessing, written independently: a float32 zero canvas, then normalise."""
    canvas = np.zeros((images.shape[0], 32, 32), dtype=np.float32)
    canvas[:, 2:30, 2:30] = images.astype(np.float32) / np.float32(255.0)
    normalised = (canvas - np.float32(0.1307)) / np.float32(0.3081)
    return normalised[:, None, :, :], labels.astype(np.int64)


@pytest.fixture
def raw_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N, 28, 28), dtype=np.uint8)
    images[0] = 0  # an all-background digit
    images[1] = 255  # an all-ink digit
    labels = rng.integers(0, 10, size=N).astype(np.uint8)
    return images, labels


@pytest.fixture
def on_disk(tmp_path, raw_data) -> Path:
    images, labels = raw_data
    write(tmp_path, IMAGES, idx_images(images))
    write(tmp_path, LABELS, idx_labels(labels))
    return tmp_path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    """A loopback HTTP server over a fresh folder: yields (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def serve_gz(root: Path, raw_data) -> dict[str, str]:
    """Write both files gzipped under ``root``; return their name -> MD5 table."""
    images, labels = raw_data
    table = {}
    for name, raw in ((IMAGES, idx_images(images)), (LABELS, idx_labels(labels))):
        path = write(root, name, raw, gz=True)
        table[path.name] = md5(path.read_bytes())
    return table


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- reading and preprocessing -------------------------------------------------------------------


@pytest.mark.parametrize("subfolder", ["", "MNIST/raw"])
@pytest.mark.parametrize("gz", [False, True])
def test_reads_idx_files_and_matches_numpy_reference(tmp_path, raw_data, subfolder, gz):
    images, labels = raw_data
    write(tmp_path / subfolder, IMAGES, idx_images(images), gz=gz)
    write(tmp_path / subfolder, LABELS, idx_labels(labels), gz=gz)

    dm = MNISTDataModule(n_examples=None, data_dir=tmp_path, download=False)

    X, y = dm.dataset.tensors
    X_ref, y_ref = reference(images, labels)
    assert X.dtype == torch.float32 and X.shape == (N, 1, 32, 32)
    assert y.dtype == torch.int64 and y.shape == (N,)
    np.testing.assert_array_equal(X.numpy(), X_ref)
    np.testing.assert_array_equal(y.numpy(), y_ref)
    # the same numbers in float64, from the definition
    np.testing.assert_allclose(
        X.numpy()[:, 0, 2:30, 2:30], (images / 255.0 - 0.1307) / 0.3081, rtol=0, atol=1e-5
    )


def test_padding_is_two_background_pixels_each_side(on_disk):
    X, _ = MNISTDataModule(n_examples=None, data_dir=on_disk, download=False).dataset.tensors
    background = (np.float32(0.0) - np.float32(0.1307)) / np.float32(0.3081)
    border = np.ones((32, 32), dtype=bool)
    border[2:30, 2:30] = False
    assert np.all(X.numpy()[:, 0][:, border] == background)
    # the all-background and all-ink digits: scaled to exactly 0 and 1 before normalising
    assert np.all(X[0].numpy() == background)
    ink = (np.float32(1.0) - np.float32(0.1307)) / np.float32(0.3081)
    assert np.all(X[1, 0, 2:30, 2:30].numpy() == ink)


def test_attributes_and_default_sizes(on_disk):
    dm = MNISTDataModule(n_examples=None, data_dir=on_disk, download=False)
    assert dm.input_dim == (1, 32, 32)
    assert dm.num_classes == 10
    assert len(dm) == N
    assert dm.batch_size == 16 and dm.shuffle is True and dm.num_workers == 0


def test_n_examples_takes_the_first_examples(on_disk, raw_data):
    images, labels = raw_data
    X, y = MNISTDataModule(n_examples=5, data_dir=on_disk, download=False).dataset.tensors
    X_ref, y_ref = reference(images[:5], labels[:5])
    np.testing.assert_array_equal(X.numpy(), X_ref)
    np.testing.assert_array_equal(y.numpy(), y_ref)


def test_n_examples_above_the_file_size_is_an_error(on_disk):
    with pytest.raises(DataError, match=rf"at most the {N} examples in .*{IMAGES} but got 13"):
        MNISTDataModule(n_examples=N + 1, data_dir=on_disk, download=False)


def test_default_data_dir_is_the_current_directory(on_disk, monkeypatch):
    monkeypatch.chdir(on_disk)
    dm = MNISTDataModule(n_examples=None, download=False)
    assert dm.data_dir == on_disk.resolve()
    assert len(dm) == N


def test_uncompressed_file_is_preferred_and_data_dir_before_raw(tmp_path, raw_data):
    images, labels = raw_data
    write(tmp_path, IMAGES, idx_images(images))
    write(tmp_path, IMAGES, b"not gzip", gz=True)
    write(tmp_path / "MNIST" / "raw", LABELS, b"not idx")
    write(tmp_path, LABELS, idx_labels(labels), gz=True)
    found = mnist.find_mnist_files(tmp_path)
    assert found == (tmp_path / IMAGES, tmp_path / f"{LABELS}.gz")


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_n_examples_must_be_a_positive_int(on_disk, bad):
    with pytest.raises(ValueError, match=r"Expected n_examples to be a positive integer but got"):
        MNISTDataModule(n_examples=bad, data_dir=on_disk, download=False)


@pytest.mark.parametrize("bad", [0, -3, 1.5])
def test_batch_size_must_be_a_positive_int(on_disk, bad):
    with pytest.raises(ValueError, match=r"Expected batch_size to be a positive integer but got"):
        MNISTDataModule(batch_size=bad, data_dir=on_disk, download=False)


def test_download_must_be_a_bool(on_disk):
    with pytest.raises(TypeError, match=r"Expected download to be True or False but got 'no'"):
        MNISTDataModule(data_dir=on_disk, download="no")


# --- malformed files -----------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_wrong_images_magic_names_the_file(tmp_path, raw_data, gz):
    images, labels = raw_data
    bad = write(tmp_path, IMAGES, idx_images(images, magic=2049), gz=gz)
    write(tmp_path, LABELS, idx_labels(labels))
    with pytest.raises(
        DataError, match=rf"Expected magic number 2051 at the start of {re.escape(str(bad))} "
    ):
        MNISTDataModule(n_examples=None, data_dir=tmp_path, download=False)


def test_wrong_labels_magic_names_the_file(tmp_path, raw_data):
    images, labels = raw_data
    write(tmp_path, IMAGES, idx_images(images))
    bad = write(tmp_path, LABELS, idx_labels(labels, magic=2051))
    with pytest.raises(
        DataError, match=rf"magic number 2049 at the start of {re.escape(str(bad))} but got 2051"
    ):
        MNISTDataModule(n_examples=None, data_dir=tmp_path, download=False)


def test_truncated_file_names_the_file(tmp_path, raw_data):
    images, _ = raw_data
    bad = write(tmp_path, IMAGES, idx_images(images)[:-1])
    expected = 16 + N * 28 * 28
    with pytest.raises(
        DataError,
        match=rf"Expected {expected} bytes in {re.escape(str(bad))} .* has {expected - 1} bytes",
    ):
        read_idx_images(bad)


def test_extra_bytes_are_an_error(tmp_path, raw_data):
    _, labels = raw_data
    bad = write(tmp_path, LABELS, idx_labels(labels) + b"\x00")
    with pytest.raises(DataError, match=rf"Expected {8 + N} bytes in {re.escape(str(bad))}"):
        read_idx_labels(bad)


def test_file_shorter_than_its_header(tmp_path):
    bad = write(tmp_path, IMAGES, b"\x00\x00\x08")
    with pytest.raises(DataError, match=r"at least 16 header bytes .* but it has 3 bytes"):
        read_idx_images(bad)


def test_images_must_be_28_by_28(tmp_path):
    bad = write(tmp_path, IMAGES, idx_images(np.zeros((2, 27, 28), dtype=np.uint8)))
    with pytest.raises(DataError, match=rf"28 x 28 images in {re.escape(str(bad))} .* 27 x 28"):
        read_idx_images(bad)


def test_labels_must_be_digits(tmp_path):
    bad = write(tmp_path, LABELS, idx_labels(np.array([1, 10, 3])))
    with pytest.raises(DataError, match=rf"labels 0 to 9 in {re.escape(str(bad))} but found 10"):
        read_idx_labels(bad)


def test_image_and_label_counts_must_match(tmp_path, raw_data):
    images, labels = raw_data
    write(tmp_path, IMAGES, idx_images(images))
    write(tmp_path, LABELS, idx_labels(labels[:-1]))
    with pytest.raises(DataError, match=rf"as many images as labels but .* has {N} and .* has"):
        load_mnist(tmp_path, download=False)


def test_corrupt_gzip_names_the_file(tmp_path):
    bad = write(tmp_path, IMAGES, b"")
    bad = bad.rename(bad.with_name(f"{IMAGES}.gz"))
    bad.write_bytes(b"definitely not gzip")
    with pytest.raises(DataError, match=rf"gzip-compressed IDX file at {re.escape(str(bad))}"):
        read_idx_images(bad)


def test_readers_return_the_stored_arrays(tmp_path, raw_data):
    images, labels = raw_data
    out_images = read_idx_images(write(tmp_path, IMAGES, idx_images(images), gz=True))
    out_labels = read_idx_labels(write(tmp_path, LABELS, idx_labels(labels)))
    assert out_images.dtype == np.uint8 and out_labels.dtype == np.uint8
    np.testing.assert_array_equal(out_images, images)
    np.testing.assert_array_equal(out_labels, labels)


# --- missing files and downloads -----------------------------------------------------------------


def test_missing_files_without_download_name_both_files_and_folders(tmp_path):
    with pytest.raises(MNISTNotFoundError) as info:
        MNISTDataModule(data_dir=tmp_path, download=False)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert f"not found: {IMAGES} and {LABELS}" in message
    assert f"in {tmp_path} or in {tmp_path / 'MNIST' / 'raw'}" in message
    assert message.endswith("or pass download=True to download them")


def test_one_missing_file_is_named(tmp_path, raw_data):
    write(tmp_path, IMAGES, idx_images(raw_data[0]))
    with pytest.raises(
        MNISTNotFoundError, match=rf"not found: {LABELS}\. Put {IMAGES} and {LABELS}"
    ):
        MNISTDataModule(data_dir=tmp_path, download=False)


def test_download_from_file_url(tmp_path, raw_data):
    table = serve_gz(tmp_path / "mirror", raw_data)
    dest = tmp_path / "out"
    paths = download_mnist(dest, files=table, mirrors=[(tmp_path / "mirror").as_uri() + "/"])
    assert paths == [dest / name for name in table]
    for name in table:
        assert (dest / name).read_bytes() == (tmp_path / "mirror" / name).read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == sorted(table)  # no temporary files left


def test_data_module_downloads_over_http_into_mnist_raw(
    tmp_path, raw_data, http_root, monkeypatch, caplog
):
    root, url = http_root
    table = serve_gz(root, raw_data)
    missing_mirror = (tmp_path / "nowhere").as_uri() + "/"
    monkeypatch.setattr(mnist_download, "MNIST_MIRRORS", (missing_mirror, url))
    monkeypatch.setattr(mnist_download, "MNIST_TRAIN_MD5", table)
    data_dir = tmp_path / "data"

    with caplog.at_level(logging.INFO, logger="loss_landscape_anim.data.mnist_download"):
        dm = MNISTDataModule(n_examples=None, data_dir=data_dir)

    raw = data_dir / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(table)
    X_ref, y_ref = reference(*raw_data)
    np.testing.assert_array_equal(dm.dataset.tensors[0].numpy(), X_ref)
    np.testing.assert_array_equal(dm.dataset.tensors[1].numpy(), y_ref)
    assert f"Downloading {url}{IMAGES}.gz" in caplog.text
    assert f"Failed to download {missing_mirror}{IMAGES}.gz" in caplog.text


def test_http_404_falls_through_to_the_next_mirror(tmp_path, raw_data, http_root):
    root, url = http_root
    table = serve_gz(root / "good", raw_data)
    dest = tmp_path / "out"
    download_mnist(dest, files=table, mirrors=[f"{url}missing/", f"{url}good/"])
    assert sorted(p.name for p in dest.iterdir()) == sorted(table)


def test_wrong_checksum_leaves_no_file(tmp_path, raw_data, http_root):
    root, url = http_root
    table = serve_gz(root, raw_data)
    wrong = dict.fromkeys(table, "0" * 32)
    dest = tmp_path / "out"
    with pytest.raises(
        MNISTNotFoundError,
        match=rf"Could not download {IMAGES}\.gz into {re.escape(str(dest))}; "
        rf"{re.escape(url)}{IMAGES}\.gz: MD5 checksum mismatch: expected 0{{32}} but got "
        + table[f"{IMAGES}.gz"],
    ):
        download_mnist(dest, files=wrong, mirrors=[url])
    assert not dest.exists()  # nor the folder the download created


def test_a_failed_second_file_keeps_the_verified_first_and_its_folder(
    tmp_path, raw_data, http_root
):
    root, url = http_root
    table = serve_gz(root, raw_data)
    names = list(table)
    dest = tmp_path / "a" / "b"
    with pytest.raises(MNISTNotFoundError, match="MD5 checksum mismatch"):
        download_mnist(dest, files={names[0]: table[names[0]], names[1]: "0" * 32}, mirrors=[url])
    assert files_under(tmp_path / "a") == ["b", f"b/{names[0]}"]


def test_existing_file_with_right_checksum_is_kept(tmp_path, raw_data):
    table = serve_gz(tmp_path / "out", raw_data)
    nowhere = (tmp_path / "nowhere").as_uri() + "/"
    paths = download_mnist(tmp_path / "out", files=table, mirrors=[nowhere])
    assert [p.name for p in paths] == list(table)


def test_existing_file_with_wrong_checksum_is_replaced(tmp_path, raw_data):
    table = serve_gz(tmp_path / "mirror", raw_data)
    name = f"{LABELS}.gz"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / name).write_bytes(b"stale")
    mirror = (tmp_path / "mirror").as_uri() + "/"
    download_mnist(tmp_path / "out", files={name: table[name]}, mirrors=[mirror])
    assert md5((tmp_path / "out" / name).read_bytes()) == table[name]


def test_failed_download_names_files_folders_and_the_error(tmp_path, monkeypatch):
    nowhere = (tmp_path / "nowhere").as_uri() + "/"
    monkeypatch.setattr(mnist_download, "MNIST_MIRRORS", (nowhere,))
    data_dir = tmp_path / "data"
    with pytest.raises(MNISTNotFoundError) as info:
        MNISTDataModule(data_dir=data_dir)
    message = str(info.value)
    assert f"not found: {IMAGES} and {LABELS}" in message
    assert f"in {data_dir} or in {data_dir / 'MNIST' / 'raw'}" in message
    assert f"The download failed: Could not download {IMAGES}.gz" in message
    assert f"{nowhere}{IMAGES}.gz: " in message
    assert isinstance(info.value.__cause__, MNISTNotFoundError)
    assert list(tmp_path.iterdir()) == []  # no data/MNIST/raw left behind


def test_cli_offline_mnist_leaves_no_folder(tmp_path, monkeypatch, capsys):
    from loss_landscape_anim.cli import main

    nowhere = (tmp_path / "nowhere").as_uri() + "/"
    monkeypatch.setattr(mnist_download, "MNIST_MIRRORS", (nowhere,))
    monkeypatch.chdir(tmp_path)
    data_dir = tmp_path / "nonexistent" / "deeper"
    with pytest.raises(SystemExit) as info:
        main(["--data", "mnist", "--data-dir", str(data_dir), "--no-progress"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "MNIST files not found" in err
    assert list(tmp_path.iterdir()) == []


def test_download_needs_a_mirror_and_a_positive_timeout(tmp_path):
    with pytest.raises(ValueError, match=r"at least one mirror URL"):
        download_mnist(tmp_path, mirrors=[])
    with pytest.raises(ValueError, match=r"Expected timeout to be a finite number > 0 but got 0"):
        download_mnist(tmp_path, timeout=0)


def test_published_checksums_and_mirrors():
    assert mnist.MNIST_TRAIN_MD5 == {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    }
    assert mnist.MNIST_MIRRORS[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert all(m.endswith("/") for m in mnist.MNIST_MIRRORS)


# --- loading -------------------------------------------------------------------------------------


def test_train_dataloader_yields_batches_of_the_requested_size(on_disk):
    dm = MNISTDataModule(batch_size=4, n_examples=None, data_dir=on_disk, download=False)
    loader = dm.train_dataloader(generator=torch.Generator().manual_seed(0))
    assert loader.num_workers == 0
    batches = list(loader)
    assert len(batches) == N // 4
    for x, y in batches:
        assert x.shape == (4, 1, 32, 32) and y.shape == (4,)
    seen = torch.cat([y for _, y in batches]).sort().values
    assert torch.equal(seen, dm.dataset.tensors[1].sort().values)


def test_unshuffled_loader_keeps_file_order(on_disk, raw_data):
    dm = MNISTDataModule(
        batch_size=5, n_examples=None, data_dir=on_disk, shuffle=False, download=False
    )
    y = torch.cat([y for _, y in dm.train_dataloader()])
    np.testing.assert_array_equal(y.numpy(), raw_data[1].astype(np.int64))


def test_public_names_exist():
    for name in mnist.__all__:
        assert hasattr(mnist, name), name
