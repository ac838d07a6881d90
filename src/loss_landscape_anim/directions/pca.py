"""PCA directions: the top two principal components of the mean-centred path(s).

Computed from the T x T Gram matrix of the rows, streaming over blocks of parameters, so the cost is
O(T^2 P) time and O(T^2 + block) memory: never a P x P matrix. Two passes over the rows: the Gram
matrix, then the directions (its top eigenvectors times the rows).

A large trajectory (more than :data:`LARGE_PCA_BYTES` of rows: a spilled recording of a large
model) takes the Gram matrix of its rows minus one of them (the first path's last row), in the
rows' own dtype (float32 for float32 models) with the blocks' sums in float64, and centres it
afterwards (``C G C`` with ``C = I - 1 1^T / T``: centring is blind to the row subtracted). The
differences of nearby weights are exact in float32 and small, so the float32 products lose
nothing that matters (the explained variances agree with float64 to about 1e-6), and the block
products run at float32 speed with no float64 copy of each block, while the next block is read
(see ``benchmarks/bench_pca.py`` for the figures).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..params.blocks import DEFAULT_BLOCK_BYTES, iter_column_blocks, matmul, read_columns

__all__ = ["LARGE_PCA_BYTES", "PCAFit", "pca_directions", "pca_fit"]

#: Rows of more than this many bytes take the large trajectories' Gram matrix (see above).
LARGE_PCA_BYTES = 512 * 2**20


@dataclass(frozen=True)
class PCAFit:
    """The top-2 principal ``directions`` (2, P) of the paths, the share of the variance each
    explains (2,), and for large trajectories the first path's ``path_2d`` (T, 2) and
    ``distance`` (T,) from the plane through its last row, read off the Gram matrix (no pass over
    the rows); None otherwise."""

    directions: np.ndarray
    explained: np.ndarray
    path_2d: np.ndarray | None = None
    distance: np.ndarray | None = None


def pca_directions(
    paths: Sequence[np.ndarray], seed: int | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """Top-2 principal directions (2, P) of the mean-centred rows of ``paths`` and their share of
    the variance, from the Gram matrix of the rows (read in blocks of ``block_bytes``). Missing
    components (fewer than 3 distinct points) are seeded random orthogonal directions."""
    fit = pca_fit(paths, seed, block_bytes)
    return fit.directions, fit.explained


def pca_fit(
    paths: Sequence[np.ndarray], seed: int | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> PCAFit:
    """:func:`pca_directions`, with the first path's coordinates for large trajectories."""
    large = sum(p.shape[0] * p.shape[1] * p.dtype.itemsize for p in paths) > LARGE_PCA_BYTES
    shifted = None
    if large:
        gram, shifted = _shifted_gram(paths, block_bytes)
    else:
        gram = _centred_gram(paths, block_bytes)
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
    if large:  # U sums to 0 over the rows (it is centred): U^T X = U^T (X - any row)
        for start, stop, block in _joint_column_blocks(paths, block_bytes, native=True):
            D[:, start:stop] = matmul(U.T.astype(block.dtype), block)
    else:
        for start, stop, block in _joint_column_blocks(paths, block_bytes):
            block -= block.mean(axis=0)
            D[:, start:stop] = matmul(U.T, block)
    explained = np.zeros(2)
    explained[:found] = np.clip(values / total, 0.0, 1.0) if found else 0.0  # rounding: <= 1
    fit = PCAFit(_complete_basis(D, seed), explained)
    if shifted is None or found < 2:
        return fit
    # The rows minus the last one, projected: (X - x_last) D^T = G_shifted U (D's rows are
    # orthonormal), and their squared distances from the plane are what the projection leaves.
    coords = shifted[:first] @ U
    square = np.diag(shifted)[:first] - np.einsum("ij,ij->i", coords, coords)
    return replace(fit, path_2d=coords, distance=np.sqrt(np.clip(square, 0.0, None)))


def _centred_gram(paths: Sequence[np.ndarray], block_bytes: int) -> np.ndarray:
    """The Gram matrix (T, T) of the mean-centred rows, in float64."""
    rows = sum(p.shape[0] for p in paths)
    gram = np.zeros((rows, rows))
    for _start, _stop, block in _joint_column_blocks(paths, block_bytes):
        block -= block.mean(axis=0)
        gram += matmul(block, block.T)
    return gram


def _shifted_gram(paths: Sequence[np.ndarray], block_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """The same for large trajectories, and the Gram matrix of the rows minus the first path's
    last row it is centred from: block products in the rows' dtype (the upper half of the rows
    times all, the lower half times itself: three quarters of a full product) summed in
    float64."""
    reference = paths[0].shape[0] - 1
    rows = sum(p.shape[0] for p in paths)
    half = rows // 2
    gram = torch.zeros(rows, rows, dtype=torch.float64)
    for _start, _stop, block in _joint_column_blocks(paths, block_bytes, native=True):
        x = torch.from_numpy(block)  # a fresh copy: changed in place
        x -= x[reference].clone()
        gram[:half] += (x[:half] @ x.T).double()
        gram[half:, half:] += (x[half:] @ x[half:].T).double()
    gram[half:, :half] = gram[:half, half:].T
    centre = torch.eye(rows, dtype=torch.float64) - 1.0 / rows
    centred = centre @ gram @ centre
    return ((centred + centred.T) / 2).numpy(), gram.numpy()


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
    paths: Sequence[np.ndarray], block_bytes: int = DEFAULT_BLOCK_BYTES, native: bool = False
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Column blocks of the rows of all ``paths`` stacked vertically, of about ``block_bytes``
    each: float64 copies, or with ``native`` copies in the rows' own dtype (float32 for float32
    rows). Every path is cut at the same columns, whatever its number of rows."""
    if len(paths) == 1 and not native:
        yield from iter_column_blocks(paths[0], block_bytes)
        return
    dtype = np.result_type(*[p.dtype for p in paths]) if native else np.dtype(np.float64)
    n_rows = sum(p.shape[0] for p in paths)
    n_cols = paths[0].shape[1]
    width = max(1, block_bytes // (dtype.itemsize * n_rows))
    bounds = [(start, min(n_cols, start + width)) for start in range(0, n_cols, width)]

    def read(start: int, stop: int) -> np.ndarray:
        blocks = [read_columns(p, start, stop, dtype) for p in paths]
        return blocks[0] if len(blocks) == 1 else np.vstack(blocks)

    if not native:
        for start, stop in bounds:
            yield start, stop, read(start, stop)
        return
    # the next block is read while the caller computes on this one (reads and products release
    # the GIL): about two blocks in memory
    with ThreadPoolExecutor(max_workers=1) as reader:
        ahead = reader.submit(read, *bounds[0])
        for k, (start, stop) in enumerate(bounds):
            block = ahead.result()
            if k + 1 < len(bounds):
                ahead = reader.submit(read, *bounds[k + 1])
            yield start, stop, block
