"""The activation-regions strategy: boxes of neighbouring points, and the values against the
per-point oracle where on, off and mixed units all occur."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from loss_landscape_anim import LossEvaluator, compute_loss_grid, project, train
from loss_landscape_anim.evaluate.strategies.relu_regions import boxes
from oracle import RTOL, loss_at, oracle_grid, random_plane, spirals


def trained_mlp() -> tuple[nn.Module, object]:
    """A trained one-hidden-layer MLP and its PCA plane: a landscape with structure."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    X, y = spirals()
    trajectory = train(model, (X, y), 40, batch_size=256, seed=0, progress=False)
    model.load_state_dict(trajectory.state_dict())
    return model, project(trajectory)


def test_a_grid_of_many_boxes_agrees_with_the_oracle() -> None:
    model, plane = trained_mlp()
    X, y = spirals()
    evaluator = LossEvaluator(model, (X, y), strategy="relu_regions")
    assert evaluator.plane_strategy.name == "relu_regions"
    grid = compute_loss_grid(
        model, (X, y), plane, resolution=24, strategy="relu_regions", progress=False
    )
    np.testing.assert_allclose(grid.loss, oracle_grid(model, X, y, plane, grid), rtol=RTOL)


def test_the_automatic_choice_for_the_default_mlp_shape() -> None:
    model, _ = trained_mlp()
    assert LossEvaluator(model, spirals(50)).plane_strategy.name == "relu_regions"
    deeper = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    assert LossEvaluator(deeper, spirals(50)).plane_strategy.name == "linear_chain"
    tanh = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 3))
    assert LossEvaluator(tanh, spirals(50)).plane_strategy.name == "linear_chain"


@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0])
def test_scattered_points_far_and_near_agree_with_the_oracle(scale: float) -> None:
    """Points in no particular order, over boxes from tiny (all units on or off) to huge (most
    units mixed), and repeated points."""
    model, plane = trained_mlp()
    X, y = spirals(300)
    g = np.random.default_rng(1)
    coords = g.normal(size=(250, 2)) * scale
    coords[10:20] = coords[0]
    evaluator = LossEvaluator(model, (X, y), strategy="relu_regions")
    got = evaluator.plane_losses(plane.origin, plane.directions, coords)
    expected = [loss_at(model, plane.origin + c @ plane.directions, X, y) for c in coords]
    np.testing.assert_allclose(got, expected, rtol=RTOL)


def test_points_on_a_line_and_a_single_point() -> None:
    model = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 3))
    X, y = spirals(120)
    plane = random_plane(model)
    coords = np.stack([np.zeros(130), np.linspace(-1, 1, 130)], axis=1)  # one coordinate fixed
    evaluator = LossEvaluator(model, (X, y), strategy="relu_regions")
    for chosen in (coords, coords[:1]):
        got = evaluator.plane_losses(plane.origin, plane.directions, chosen)
        expected = [loss_at(model, plane.origin + c @ plane.directions, X, y) for c in chosen]
        np.testing.assert_allclose(got, expected, rtol=RTOL)


def test_a_grid_chunk_is_cut_into_square_boxes() -> None:
    """10 rows of a 100 x 100 grid: ten boxes of 10 x 10 neighbouring grid points."""
    a, b = np.meshgrid(np.linspace(-1, 1, 100), np.linspace(-2, 2, 100))
    grid = torch.tensor(np.stack([a.ravel(), b.ravel()], 1), dtype=torch.float32)
    scale = grid.amax(dim=0) - grid.amin(dim=0)
    chunk = grid[3000:4000]
    found = boxes(chunk, scale, 100)
    assert len(found) == 10
    assert sorted(torch.cat(found).tolist()) == list(range(1000))  # every point exactly once
    for box in found:
        rows, cols = np.divmod(box.numpy() + 3000, 100)
        assert len(box) == 100
        assert np.ptp(rows) == 9 and np.ptp(cols) == 9


def test_boxes_of_a_small_or_degenerate_chunk() -> None:
    same = torch.zeros(7, 2)
    assert [b.tolist() for b in boxes(same, torch.ones(2), 100)] == [list(range(7))]
    found = boxes(torch.zeros(250, 2), torch.ones(2), 100)
    assert sorted(torch.cat(found).tolist()) == list(range(250))
    assert max(len(b) for b in found) <= 100


def test_many_classes_make_smaller_boxes_and_pieces(monkeypatch) -> None:
    """With many classes the per-box tensors are bounded: fewer points per box, and the mixed
    units in pieces (scattered points make large boxes, most units mixed); the values do not
    change."""
    from loss_landscape_anim.evaluate.strategies import relu_regions

    monkeypatch.setattr(relu_regions, "BOX_BYTES", 300 * 1024)
    pieces = []
    split = torch.Tensor.split

    def counted(self, size, *args, **kwargs):
        found = split(self, size, *args, **kwargs)
        pieces.append(len(found))
        return found

    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 40))
    X, y = spirals(200)
    plane = random_plane(model)
    coords = np.random.default_rng(4).normal(size=(30, 2)) * 20
    evaluator = LossEvaluator(model, (X, y), strategy="relu_regions")
    with monkeypatch.context() as patch:
        patch.setattr(torch.Tensor, "split", counted)
        got = evaluator.plane_losses(plane.origin, plane.directions, coords)
    assert evaluator.plane_strategy.box_points(200) == 3  # 3 x 200 x 40 floats x 3 each
    assert max(pieces[1:]) > 1  # the first split cut the boxes; then mixed units in pieces
    expected = [loss_at(model, plane.origin + c @ plane.directions, X, y) for c in coords]
    np.testing.assert_allclose(got, expected, rtol=RTOL)
