"""A tiny real landscape (spirals MLP, a few steps, a small grid) and its GIF, shared by the
exporter tests."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from loss_landscape_anim import (
    MLP,
    Animation,
    LossGrid,
    Plane,
    SpiralsDataModule,
    Style,
    Trajectory,
    animate,
    compute_loss_grid,
    project,
    train,
)


@dataclasses.dataclass(frozen=True)
class Landscape:
    trajectory: Trajectory
    plane: Plane
    grid: LossGrid
    animation: Animation


@pytest.fixture(scope="session")
def landscape() -> Landscape:
    data = SpiralsDataModule()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MLP(2, 3)
    trajectory = train(model, data, 6, seed=0, progress=False)
    plane = project(trajectory, "pca")
    grid = compute_loss_grid(model, data, plane, resolution=9, progress=False)
    style = Style(figsize=(4.0, 3.0), dpi=60, panels=False)
    animation = animate(trajectory, plane, grid, None, format="gif", style=style, progress=False)
    return Landscape(trajectory, plane, grid, animation)
