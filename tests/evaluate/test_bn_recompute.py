"""``bn="recompute"``: BatchNorm statistics re-estimated at every point, against an oracle that
loads each point's weights into a copy of the model and recalibrates its statistics; the same as
eval mode where the running statistics are the point's own; errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import vector_to_parameters

from loss_landscape_anim import LossEvaluator, compute_loss_grid
from loss_landscape_anim.errors import IncompatibleFileError
from oracle import RTOL, random_plane, spirals


def bn_model(dropout: float = 0.0) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3)
    )


def calibrated(model: nn.Module, X: torch.Tensor) -> nn.Module:
    """A copy whose running statistics are those of ``X`` at its own weights."""
    model = copy.deepcopy(model)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.reset_running_stats()
            m.momentum = None
            m.train()
    with torch.no_grad():
        model(X)
    return model.eval()


def oracle_loss(model: nn.Module, weights: np.ndarray, X: torch.Tensor, y: torch.Tensor) -> float:
    copy_ = copy.deepcopy(model)
    vector_to_parameters(torch.as_tensor(weights, dtype=torch.float32), copy_.parameters())
    copy_ = calibrated(copy_.eval(), X)
    with torch.no_grad():
        return float(F.cross_entropy(copy_(X), y))


def test_each_point_gets_statistics_of_its_own_weights() -> None:
    X, y = spirals(300)  # one batch of fewer than 1,024 examples: the oracle's one pass
    model = calibrated(bn_model(), X)
    plane = random_plane(model, scale=2.0)
    grid = compute_loss_grid(model, (X, y), plane, resolution=4, bn="recompute", progress=False)
    expected = [[oracle_loss(model, plane.point(a, b), X, y) for a in grid.xs] for b in grid.ys]
    np.testing.assert_allclose(grid.loss, expected, rtol=RTOL)


def test_recompute_agrees_with_eval_mode_only_where_the_statistics_are_the_points_own() -> None:
    X, y = spirals(300)
    model = calibrated(bn_model(dropout=0.5), X)  # running statistics: those of the origin
    plane = random_plane(model)
    coords = np.array([[0.0, 0.0], [3.0, -3.0]])
    recomputed = LossEvaluator(model, (X, y), bn="recompute").plane_losses(
        plane.origin, plane.directions, coords
    )
    running = LossEvaluator(model, (X, y)).plane_losses(plane.origin, plane.directions, coords)
    assert recomputed[0] == pytest.approx(running[0], rel=RTOL)
    assert abs(recomputed[1] - running[1]) > 0.01 * running[1]
    again = LossEvaluator(model, (X, y), bn="recompute").plane_losses(
        plane.origin, plane.directions, coords
    )
    np.testing.assert_array_equal(again, recomputed)  # dropout stays off


def test_weight_losses_recompute_too() -> None:
    X, y = spirals(200)
    model = calibrated(bn_model(), X)
    plane = random_plane(model)
    W = np.stack([plane.point(1.0, 0.5), plane.point(-2.0, 1.0)])
    losses = LossEvaluator(model, (X, y), bn="recompute").weight_losses(W)
    np.testing.assert_allclose(losses, [oracle_loss(model, w, X, y) for w in W], rtol=RTOL)


def test_bad_bn_settings_are_refused() -> None:
    X, y = spirals(20)
    with pytest.raises(
        ValueError, match="Expected bn to be one of 'eval', 'recompute' but got 'train'"
    ):
        LossEvaluator(bn_model(), (X, y), bn="train")
    with pytest.raises(ValueError, match="has no BatchNorm layer"):
        LossEvaluator(nn.Sequential(nn.Linear(2, 3)), (X, y), bn="recompute")
    with pytest.raises(ValueError, match="use strategy='auto' or 'per_point', not 'vmap'"):
        LossEvaluator(bn_model(), (X, y), bn="recompute", strategy="vmap")


def test_a_checkpoint_records_how_statistics_were_taken(tmp_path) -> None:
    X, y = spirals(50)
    model = calibrated(bn_model(), X)
    plane = random_plane(model)
    path = tmp_path / "grid.npz"
    compute_loss_grid(model, (X, y), plane, resolution=3, checkpoint=path, progress=False)
    with pytest.raises(
        IncompatibleFileError, match="bn: 'eval' in the checkpoint, 'recompute' now"
    ):
        compute_loss_grid(
            model, (X, y), plane, resolution=3, checkpoint=path, bn="recompute", progress=False
        )


def test_a_second_job_gets_statistics_of_its_own_points() -> None:
    """The statistics of a chunk are kept for its data batches, never for another job's chunk
    with the same indices."""
    X, y = spirals(300)
    model = calibrated(bn_model(), X)
    plane = random_plane(model, scale=2.0)
    first, second = np.array([[0.5, -0.5], [1.0, 0.0]]), np.array([[-1.0, 1.0], [0.0, 2.0]])
    evaluator = LossEvaluator(model, (X, y), bn="recompute")
    evaluator.plane_losses(plane.origin, plane.directions, first)
    got = evaluator.plane_losses(plane.origin, plane.directions, second)
    expected = [oracle_loss(model, plane.origin + c @ plane.directions, X, y) for c in second]
    np.testing.assert_allclose(got, expected, rtol=RTOL)


def test_accuracies_use_the_recomputed_statistics_too() -> None:
    X, y = spirals(300)
    model = calibrated(bn_model(), X)
    plane = random_plane(model, scale=2.0)
    W = np.stack([plane.point(0.0, 0.0), plane.point(2.0, -1.5)])
    got = LossEvaluator(model, (X, y), bn="recompute").weight_accuracies(W)
    for w, accuracy in zip(W, got, strict=True):
        copy_ = copy.deepcopy(model)
        vector_to_parameters(torch.as_tensor(w, dtype=torch.float32), copy_.parameters())
        with torch.no_grad():
            expected = (calibrated(copy_, X)(X).argmax(1) == y).double().mean()
        assert accuracy == pytest.approx(float(expected), abs=1e-12)
