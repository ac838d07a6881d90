"""The documented four stages give what the one-call API gives, BatchNorm included: the trained
weights and buffers go back into a model through ``Trajectory.apply_to``; and the comparison has
every output of a single run."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from loss_landscape_anim import (
    compare_optimizers,
    compute_loss_grid,
    loss_landscape_anim,
    project,
    train,
)
from loss_landscape_anim.pipeline import stages as stages_module


def batch_norm_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(2, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    )


def spirals_pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(120, 2, generator=g), torch.randint(0, 3, (120,), generator=g)


def captured_grids(monkeypatch) -> list:
    seen: list = []
    real_animate = stages_module.animate

    def recording(trajectory, plane, grid, *args, **kwargs):
        seen.append(grid)
        return real_animate(trajectory, plane, grid, *args, **kwargs)

    monkeypatch.setattr(stages_module, "animate", recording)
    return seen


def test_the_four_stages_with_batch_norm_give_the_one_call_grid(tmp_path, monkeypatch):
    data = spirals_pair()
    model = batch_norm_model()
    seen = captured_grids(monkeypatch)
    monkeypatch.chdir(tmp_path)
    loss_landscape_anim(
        n_epochs=5, model=model, datamodule=data, seed=0, resolution=6, progress=False
    )
    (one_call,) = seen

    trajectory = train(model, data, n_epochs=5, seed=0, progress=False)
    plane = project(trajectory, "pca")
    trained = trajectory.apply_to(copy.deepcopy(model))
    grid = compute_loss_grid(trained, data, plane, resolution=6, progress=False)
    np.testing.assert_array_equal(grid.loss, one_call.loss)
    # with the untrained running statistics the grid is another one: the trap apply_to closes
    stale = compute_loss_grid(model, data, plane, resolution=6, progress=False)
    assert not np.allclose(stale.loss, grid.loss)


def test_apply_to_loads_a_row_and_refuses_what_does_not_fit():
    data = spirals_pair()
    model = batch_norm_model()
    trajectory = train(model, data, n_epochs=3, seed=0, progress=False)
    target = copy.deepcopy(model)
    trajectory.apply_to(target, row=1)
    flat = torch.nn.utils.parameters_to_vector(target.parameters()).detach().numpy()
    np.testing.assert_array_equal(flat, trajectory.params[1])
    assert int(target[1].num_batches_tracked) == 0  # rows before the last carry no buffers
    with pytest.raises(IndexError, match=r"row to be an integer in \[-4, 3\] but got 4"):
        trajectory.apply_to(target, row=4)
    with pytest.raises(ValueError, match="Expected a model with 67 parameters"):
        trajectory.apply_to(torch.nn.Linear(2, 3))


def test_a_comparison_has_the_line_the_interactive_surface_and_decision_regions(tmp_path):
    result = compare_optimizers(
        ["adam", "sgd"],
        3,
        seed=0,
        resolution=5,
        n_frames=3,
        progress=False,
        output_filename=tmp_path / "c.gif",
        line_output=tmp_path / "c.line.png",
        interactive_output=tmp_path / "c.html",
        decision_regions=True,
    )
    assert set(result.lines) == {"adam", "sgd"}
    for line in result.lines.values():
        assert line.labels == ("initial", "final")
        assert line.barrier >= 0
    assert result.decision_regions is not None
    assert result.decision_regions.rows[-1] == len(result.trajectories["adam"]) - 1
    with Image.open(tmp_path / "c.line.png") as im:
        assert im.format == "PNG"
    assert "plotly" in (tmp_path / "c.html").read_text()[:20000].lower()
    with Image.open(tmp_path / "c.gif") as im:
        assert im.n_frames == 3
