"""PCA directions: the top two principal components of the mean-centred path(s).

Computed from the T x T Gram matrix of the rows, streaming over blocks of parameters, so the cost is
O(T^2 P) time and O(T^2 + block) memory: never a P x P matrix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..params.blocks import DEFAULT_BLOCK_BYTES, iter_column_blocks, matmul, read_columns

__all__ = ["pca_directions"]


def pca_directions(
    paths: Sequence[np.ndarray], seed: int | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """Top-2 principal directions (2, P) of the mean-centred rows of ``paths`` and their share of
    the variance, from the Gram matrix of the rows (read in blocks of ``block_bytes``). Missing
    components (fewer than 3 distinct points) are seeded random orthogonal directions."""
    rows = np.cumsum([0] + [p.shape[0] for p in paths])
    gram = np.zeros((rows[-1], rows[-1]))
    for _start, _stop, block in _joint_column_blocks(paths, block_bytes):
        block -= block.mean(axis=0)
        gram += matmul(block, block.T)
    total = float(np.trace(gram))
    eigvals, eigvecs = (v.numpy() for v in torch.linalg.eigh(torch.from_numpy(gram)))
    order = np.argsort(eigvals)[::-1][:2]
    values = np.clip(eigvals[order], 0.0, None)
    # Components with no variance (a path of 1 or 2 points, or a straight line) are completed by
    # seeded random directions orthogonal to the others, with 0% explained variance.
    found = int(np.sum(values > 1e-12 * max(total, 1e-300))) if total > 0 else 0
    order, values = order[:found], values[:found]
    U = eigvecs[:, order] / np.sqrt(values)
    # Sign convention: the first path starts at negative coordinates on both axes.
    first = paths[0].shape[0]
    signs = np.where(eigvecs[0, order] - eigvecs[first - 1, order] > 0, -1.0, 1.0)
    U = U * signs
    D = np.empty((found, paths[0].shape[1]))
    for start, stop, block in _joint_column_blocks(paths, block_bytes):
        block -= block.mean(axis=0)
        D[:, start:stop] = matmul(U.T, block)
    explained = np.zeros(2)
    explained[:found] = np.clip(values / total, 0.0, 1.0) if found else 0.0  # rounding: <= 1
    return _complete_basis(D, seed), explained


def _complete_basis(D: np.ndarray, seed: int | None) -> np.ndarray:
    """``D`` (k, P), k <= 2 orthonormal rows, completed to 2 rows with seeded random unit
    directions orthogonal to the rows before them."""
    if D.shape[0] == 2:
        return D
    # numpy takes non-negative seeds only; torch reads a negative seed as its 64-bit two's
    # complement, and so does this.
    generator = np.random.default_rng(None if seed is None else seed % 2**64)
    rows = list(D)
    while len(rows) < 2:
        v = generator.standard_normal(D.shape[1])
        for r in rows:
            v -= (v @ r) * r
        rows.append(v / np.linalg.norm(v))
    return np.stack(rows)


def _joint_column_blocks(
    paths: Sequence[np.ndarray], block_bytes: int = DEFAULT_BLOCK_BYTES
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Column blocks of the rows of all ``paths`` stacked vertically, as float64 copies of about
    ``block_bytes`` each. Every path is cut at the same columns, whatever its number of rows."""
    if len(paths) == 1:
        yield from iter_column_blocks(paths[0], block_bytes)
        return
    n_rows = sum(p.shape[0] for p in paths)
    n_cols = paths[0].shape[1]
    width = max(1, block_bytes // (8 * n_rows))
    for start in range(0, n_cols, width):
        stop = min(n_cols, start + width)
        yield start, stop, np.vstack([read_columns(p, start, stop) for p in paths])
