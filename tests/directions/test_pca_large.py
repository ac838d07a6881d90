"""The PCA of large trajectories (the Gram matrix of the rows minus one row, float32 block products
summed in float64, the next block read during the products) against numpy's float64 SVD: the same
directions up to float32 rounding, explained variances within 1e-6 (the promise is 1e-3), the
same signs, joint paths, spilled rows, float64 rows kept in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from loss_landscape_anim.directions import pca
from loss_landscape_anim.params.store import RowStore
from tolerance import EPS32, EPS64


@pytest.fixture
def large(monkeypatch):
    """Every trajectory counts as large."""
    monkeypatch.setattr(pca, "LARGE_PCA_BYTES", 0)


def training_like(T: int = 40, P: int = 3000, seed: int = 0, dtype=np.float32) -> np.ndarray:
    """Weights of magnitude ~0.05 moving by ~1e-3 along a curved, noisy path: the path's spread
    is small next to the weights, as in training."""
    rng = np.random.default_rng(seed)
    base = 0.05 * rng.standard_normal(P)
    d1, d2 = 1e-3 * rng.standard_normal((2, P))
    a = np.linspace(0, 1, T)[:, None]
    rows = base + np.sin(3 * a) * d1 * 10 + a * d2 * 5 + 1e-4 * rng.standard_normal((T, P))
    return rows.astype(dtype)


def svd_reference(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centred = rows.astype(np.float64) - rows.astype(np.float64).mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[:2], (s**2 / np.sum(s**2))[:2]


@pytest.mark.usefixtures("large")
@pytest.mark.parametrize("block_bytes", [4096, 2**26])
def test_large_pca_matches_float64_svd(block_bytes) -> None:
    rows = training_like()
    D, explained = pca.pca_directions([rows], seed=0, block_bytes=block_bytes)
    vt, ratios = svd_reference(rows)
    np.testing.assert_allclose(explained, ratios, rtol=0, atol=1e-6)
    for k in range(2):
        sign = np.sign(D[k] @ vt[k])
        # float32 rows: the directions agree to float32 rounding, relative to their size
        np.testing.assert_allclose(
            D[k], sign * vt[k], rtol=0, atol=1e3 * EPS32 * np.abs(vt[k]).max()
        )
    np.testing.assert_allclose(D @ D.T, np.eye(2), atol=1e3 * EPS32)


def test_large_and_small_pca_agree_on_signs_and_values(monkeypatch) -> None:
    paths = [training_like(T=30, seed=1), training_like(T=12, seed=2)]
    small_D, small_explained = pca.pca_directions(paths, seed=0)
    monkeypatch.setattr(pca, "LARGE_PCA_BYTES", 0)
    large_D, large_explained = pca.pca_directions(paths, seed=0)
    np.testing.assert_allclose(large_explained, small_explained, rtol=0, atol=1e-6)
    scale = np.abs(small_D).max()
    np.testing.assert_allclose(large_D, small_D, rtol=0, atol=1e3 * EPS32 * scale)  # same signs


@pytest.mark.usefixtures("large")
def test_float64_rows_stay_float64() -> None:
    rows = training_like(dtype=np.float64)
    D, explained = pca.pca_directions([rows], seed=0)
    vt, ratios = svd_reference(rows)
    np.testing.assert_allclose(explained, ratios, rtol=0, atol=1e6 * EPS64)
    for k in range(2):
        np.testing.assert_allclose(np.abs(D[k]), np.abs(vt[k]), atol=1e6 * EPS64)


@pytest.mark.usefixtures("large")
def test_spilled_rows_are_read_in_blocks() -> None:
    rows = training_like(T=25, P=5000)
    store = RowStore(rows.shape[1], np.float32, memory_limit=4 * 5000 * 3)  # 3 rows, then disk
    for row in rows:
        store.append(torch.from_numpy(row))
    spilled = store.rows()
    assert type(spilled).__name__ == "SpilledRows"
    D, explained = pca.pca_directions([spilled], seed=0, block_bytes=25 * 4 * 700)
    D_mem, explained_mem = pca.pca_directions([rows], seed=0, block_bytes=25 * 4 * 700)
    np.testing.assert_array_equal(D, D_mem)
    np.testing.assert_array_equal(explained, explained_mem)


@pytest.mark.usefixtures("large")
def test_a_path_without_variance_is_completed_as_before() -> None:
    rows = np.ones((6, 50), np.float32)
    D, explained = pca.pca_directions([rows], seed=3)
    np.testing.assert_array_equal(explained, [0.0, 0.0])
    np.testing.assert_allclose(D @ D.T, np.eye(2), atol=1e-12)


@pytest.mark.usefixtures("large")
def test_the_path_is_projected_from_the_gram_matrix_as_by_a_pass_over_the_rows() -> None:
    from loss_landscape_anim.directions import project
    from loss_landscape_anim.params.blocks import project_rows
    from loss_landscape_anim.params.layout import ParamLayout
    from loss_landscape_anim.results import Trajectory

    rows = training_like(T=30, P=2000)
    layout = ParamLayout(("w",), ((2000,),))
    trajectory = Trajectory(rows, np.zeros(30), np.zeros(30), np.arange(30), layout)
    plane = project(trajectory, "pca")
    coords, distance = project_rows(rows, rows[-1].astype(np.float64), plane.directions)
    scale = np.abs(coords).max()
    np.testing.assert_allclose(plane.path_2d, coords, rtol=0, atol=1e3 * EPS32 * scale)
    np.testing.assert_allclose(plane.off_plane_distance, distance, rtol=0, atol=1e3 * EPS32 * scale)
    np.testing.assert_allclose(plane.path_2d[-1], 0.0, atol=1e-12)
    assert (plane.path_2d[0] < 0).all()  # the sign convention
    plane.check_path(trajectory)
