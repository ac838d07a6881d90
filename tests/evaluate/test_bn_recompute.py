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
from torch.utils.data import DataLoader

from loss_landscape_anim import LossEvaluator, compute_loss_grid
from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.results import Plane
from oracle import RTOL, random_plane, spirals
from token_oracle import BatchNormLM, ItemDataset, direct_bn_loss, token_batches
from tolerance import sum_tolerance


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


def unlabelled_tail(batches: list[dict], positions: int) -> list[dict]:
    """``batches`` with the last ``positions`` labels of every sequence ignored (the evaluation
    batches are then cut shorter)."""
    cut = [dict(b, labels=b["labels"].clone()) for b in batches]
    for b in cut:
        b["labels"][:, -positions:] = -100
    return cut


def test_a_causal_lm_gets_statistics_of_its_sequences_as_given() -> None:
    """Training-mode BatchNorm sees whole sequences: the statistics are not taken on the
    evaluation's inputs, which lose their last position to the next-token shift and are cut after
    their last label, whatever the memory budget or the streaming."""
    model = BatchNormLM().double()
    batches = unlabelled_tail(token_batches([(40, 6), (30, 6), (20, 6)], vocab=5), 2)
    tokens = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
    positions = 90 * 6  # the values each BatchNorm statistic is a sum of
    origin = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy()
    D = np.random.default_rng(1).standard_normal((2, origin.size))
    plane = Plane(origin, D, np.array([[-0.6, 0.6], [-0.6, 0.6]]), np.zeros(2))
    data = DataLoader(batches, batch_size=None)
    grid = compute_loss_grid(model, data, plane, resolution=3, bn="recompute", progress=False)
    expected = np.array(
        [[direct_bn_loss(model, plane.point(a, b), batches) for a in grid.xs] for b in grid.ys]
    )
    atol = sum_tolerance(float(expected.max()) * max(tokens, positions), max(tokens, positions))
    np.testing.assert_allclose(grid.loss, expected, rtol=0, atol=atol)
    W = np.stack([plane.point(0.6, -0.6), plane.point(-0.6, 0.0)])
    small = LossEvaluator(model, data, bn="recompute", memory_budget=1)
    streamed = LossEvaluator(model, ItemDataset(batches), bn="recompute", stream=True)
    assert small.data.n_batches == 2  # of 64 and 26 sequences, each cut to 3 positions
    assert small.data.batch(1)[0]["input_ids"].shape == (26, 3)
    want = [direct_bn_loss(model, w, batches) for w in W]
    for evaluator in (small, streamed):
        np.testing.assert_allclose(evaluator.weight_losses(W), want, rtol=0, atol=atol)


def test_the_data_fingerprint_covers_the_positions_the_loss_does_not_read() -> None:
    """The last input position of a causal language model changes the recomputed statistics
    only: a checkpoint made on other last tokens is not the same data."""
    batches = token_batches([(6, 6), (5, 6)], vocab=5)
    other = [dict(b, input_ids=b["input_ids"].clone()) for b in batches]
    other[0]["input_ids"][:, -1] = (other[0]["input_ids"][:, -1] + 1) % 5
    model = BatchNormLM().double()
    for wrap in (lambda b: DataLoader(b, batch_size=None), ItemDataset):
        stream = wrap is ItemDataset
        ids = [
            LossEvaluator(model, wrap(b), bn="recompute", stream=stream).identity()["data"]
            for b in (batches, other)
        ]
        assert ids[0] != ids[1]
