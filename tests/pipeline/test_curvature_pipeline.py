"""``curvature=True`` and Hessian directions through the one-call API, the comparison and the
command line: the panel's data, the ratio map beside the output, argument checks first."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import loss_landscape_anim.pipeline.stages as stages_module
from loss_landscape_anim import (
    PathCurvature,
    SpiralsDataModule,
    compare_optimizers,
    loss_landscape_anim,
)
from loss_landscape_anim.cli import main


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def capture_render(monkeypatch) -> list[dict]:
    """Record what reaches ``animate`` (and still render)."""
    seen: list[dict] = []
    real_animate = stages_module.animate

    def recording_animate(trajectory, plane, grid, *args, **kwargs):
        seen.append({"trajectory": trajectory, "plane": plane, **kwargs})
        return real_animate(trajectory, plane, grid, *args, **kwargs)

    monkeypatch.setattr(stages_module, "animate", recording_animate)
    return seen


def test_one_call_with_curvature_writes_the_map_and_draws_the_panel(tmp_path, monkeypatch):
    seen = capture_render(monkeypatch)
    out = tmp_path / "a.gif"
    loss_landscape_anim(
        8,
        optimizer="sgd",
        learning_rate=0.5,
        seed=0,
        resolution=5,
        sampling=True,
        n_frames=4,
        show_path_losses=False,
        decision_regions=False,
        datamodule=SpiralsDataModule(n_per_class=30),
        output_filename=out,
        model_dirpath=tmp_path / "ckpt",
        progress=False,
        curvature=True,
    )
    (call,) = seen
    curvature = call["curvature"]
    assert isinstance(curvature, PathCurvature)
    trajectory = call["trajectory"]
    np.testing.assert_array_equal(curvature.rows, [0, 3, 5, 8])  # the frames shown
    np.testing.assert_array_equal(curvature.steps, trajectory.steps[curvature.rows])
    assert np.all(curvature.lambda_max > 0) and np.all(curvature.lambda_min <= curvature.lambda_max)
    assert curvature.stability_threshold == 4.0
    with Image.open(tmp_path / "a.curvature.png") as im:
        assert im.format == "PNG"
    with Image.open(out) as im:
        assert im.n_frames == 4


def test_hessian_directions_in_the_one_call(tmp_path, monkeypatch):
    seen = capture_render(monkeypatch)
    loss_landscape_anim(
        4,
        seed=0,
        resolution=4,
        sampling=True,
        n_frames=2,
        show_path_losses=False,
        decision_regions=False,
        reduction_method="hessian",
        output_filename=tmp_path / "h.gif",
        model_dirpath=tmp_path / "ckpt",
        progress=False,
    )
    (call,) = seen
    plane = call["plane"]
    assert plane.method == "hessian"
    np.testing.assert_allclose(plane.directions @ plane.directions.T, np.eye(2), atol=1e-6)
    assert not (tmp_path / "h.curvature.png").exists()


def test_compare_with_curvature(tmp_path):
    out = tmp_path / "c.gif"
    result = compare_optimizers(
        ["adam", "sgd"],
        5,
        seed=0,
        resolution=4,
        n_frames=3,
        learning_rates={"sgd": 0.5},
        datamodule=SpiralsDataModule(n_per_class=30),
        output_filename=out,
        progress=False,
        curvature=True,
        reduction_method="hessian",
    )
    assert result.plane.method == "hessian"
    assert result.curvature is not None and set(result.curvature) == {"adam", "sgd"}
    assert result.curvature["sgd"].stability_threshold == 4.0
    assert result.curvature["adam"].stability_threshold is None
    assert result.curvature_grid is not None
    np.testing.assert_array_equal(
        result.curvature_grid.xs, np.linspace(*result.grid.xs[[0, -1]], 4)
    )
    assert (tmp_path / "c.curvature.png").is_file()


@pytest.mark.parametrize(
    "call",
    [
        lambda tmp: loss_landscape_anim(3, curvature="yes", output_filename=tmp / "x.gif"),
        lambda tmp: compare_optimizers(["adam"], 3, curvature=1, output_filename=tmp / "x.gif"),
    ],
)
def test_a_bad_curvature_value_fails_before_training(tmp_path, monkeypatch, call):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before validating")

    monkeypatch.setattr("loss_landscape_anim.pipeline.one_call.train", no_training)
    monkeypatch.setattr("loss_landscape_anim.pipeline.compare.train", no_training)
    with pytest.raises(ValueError, match="Expected curvature to be True or False but got"):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_curvature_and_hessian_method(tmp_path):
    out = tmp_path / "cli.gif"
    args = ["--epochs", "3", "--resolution", "4", "--frames", "2", "--no-progress"]
    code = main([*args, "--curvature", "--method", "hessian", "--output", str(out)])
    assert code == 0
    assert out.is_file()
    with Image.open(tmp_path / "cli.curvature.png") as im:
        assert im.format == "PNG"
