"""Streaming reads of a (T, P) array of flat weight rows, in blocks of columns or of rows, and the
products computed on them. A :class:`~.store.SpilledRows` array is read from its file with
``pread``, so no page of the file stays mapped into this process (through the memory map, each
row's slice would map its neighbourhood too): reading the whole array keeps the resident memory at
about one block.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from .store import SpilledRows

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "iter_column_blocks",
    "iter_row_blocks",
    "matmul",
    "project_rows",
    "read_columns",
]

#: Default bytes of one float64 block read by :func:`iter_column_blocks` / :func:`iter_row_blocks`.
DEFAULT_BLOCK_BYTES = 64 * 2**20


def _spill_fd(params: np.ndarray) -> int | None:
    file = params.file if isinstance(params, SpilledRows) else None
    return None if file is None else file.fileno()


def iter_column_blocks(
    params: np.ndarray, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, params[:, start:stop])`` as float64 copies, ~``block_bytes`` each."""
    T, P = params.shape
    width = max(1, block_bytes // (8 * max(T, 1)))
    for start in range(0, P, width):
        stop = min(P, start + width)
        yield start, stop, read_columns(params, start, stop)


def read_columns(
    params: np.ndarray, start: int, stop: int, dtype: np.dtype | type | None = np.float64
) -> np.ndarray:
    """``params[:, start:stop]`` as a copy in ``dtype`` (None: the stored dtype); a spilled
    array is read with one ``pread`` per row into a fresh buffer."""
    fd = _spill_fd(params)
    if fd is None:
        return np.array(params[:, start:stop], dtype=dtype or params.dtype)
    T, P = params.shape
    out = np.empty((T, stop - start), dtype=params.dtype)
    size = params.dtype.itemsize
    for t in range(T):
        os.preadv(fd, [memoryview(out[t]).cast("B")], size * (t * P + start))
    return out if dtype is None or out.dtype == dtype else out.astype(dtype)


def iter_row_blocks(
    params: np.ndarray, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, params[start:stop])`` as float64 copies, ~``block_bytes`` each."""
    T, P = params.shape
    height = max(1, block_bytes // (8 * max(P, 1)))
    fd = _spill_fd(params)
    for start in range(0, T, height):
        stop = min(T, start + height)
        if fd is None:
            yield start, stop, np.array(params[start:stop], dtype=np.float64)
            continue
        rows = np.empty((stop - start, P), dtype=params.dtype)
        os.preadv(fd, [rows.data.cast("B")], params.dtype.itemsize * start * P)
        yield start, stop, rows.astype(np.float64)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` through torch, so that every product runs on torch's one thread pool (numpy's
    BLAS keeps a second pool, and the two spinning against each other stall both)."""
    return (
        torch.from_numpy(np.ascontiguousarray(a)) @ torch.from_numpy(np.ascontiguousarray(b))
    ).numpy()


def project_rows(
    params: np.ndarray, origin: np.ndarray, D: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares plane coordinates (T, 2) of each row of ``params`` on the plane
    ``origin + span(D)`` and each row's distance from that plane (T,)."""
    T = params.shape[0]
    inner = np.zeros((T, 2))
    sq_norm = np.zeros(T)
    for start, stop, block in iter_column_blocks(params):
        block -= origin[start:stop]
        inner += matmul(block, D[:, start:stop].T)
        sq_norm += np.einsum("ij,ij->i", block, block)
    coords = np.linalg.solve(D @ D.T, inner.T).T
    residual = sq_norm - np.einsum("ij,ij->i", coords, inner)
    return coords, np.sqrt(np.clip(residual, 0.0, None))
