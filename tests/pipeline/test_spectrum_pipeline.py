"""``density=True`` and ``sharpness=rho`` through the one-call API, the comparison and the
command line: the spectrum reaches the panel, the density figure and the sharpness file are
written beside the output, bad values fail before training."""

from __future__ import annotations

import json

import pytest
from PIL import Image

import loss_landscape_anim.pipeline.stages as stages_module
from loss_landscape_anim import SpiralsDataModule, compare_optimizers, loss_landscape_anim
from loss_landscape_anim.cli import main


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


SMALL = dict(
    seed=0,
    resolution=4,
    sampling=True,
    n_frames=3,
    show_path_losses=False,
    decision_regions=False,
    progress=False,
)


def test_one_call_with_density_and_sharpness(tmp_path, monkeypatch):
    seen = []
    real = stages_module.animate

    def recording(trajectory, plane, grid, *args, **kwargs):
        seen.append(kwargs)
        return real(trajectory, plane, grid, *args, **kwargs)

    monkeypatch.setattr(stages_module, "animate", recording)
    out = tmp_path / "a.gif"
    loss_landscape_anim(
        4,
        datamodule=SpiralsDataModule(n_per_class=20),
        output_filename=out,
        model_dirpath=tmp_path / "ckpt",
        density=True,
        sharpness=0.05,
        **SMALL,
    )
    (call,) = seen
    assert call["curvature"].has_density
    with Image.open(tmp_path / "a.density.png") as im:
        assert im.format == "PNG"
    assert not (tmp_path / "a.curvature.png").exists()  # the convexity map needs curvature=True
    found = json.loads((tmp_path / "a.sharpness.json").read_text())
    # the run is named by its optimizer, as in a comparison
    assert found["rho"] == 0.05 and set(found["paths"]["adam"]) == {"worst_case", "average_case"}
    worst, average = found["paths"]["adam"]["worst_case"], found["paths"]["adam"]["average_case"]
    assert worst["stderr"] is None and average["stderr"] > 0
    assert worst["value"] >= average["value"] - 4 * average["stderr"]


def test_compare_with_sharpness_and_density(tmp_path):
    result = compare_optimizers(
        ["adam", "sgd"],
        3,
        datamodule=SpiralsDataModule(n_per_class=20),
        output_filename=tmp_path / "c.gif",
        resolution=4,
        n_frames=2,
        seed=0,
        progress=False,
        density=True,
        sharpness=0.1,
    )
    assert all(c.has_density for c in result.curvature.values())
    assert (tmp_path / "c.density.png").is_file()
    found = json.loads((tmp_path / "c.sharpness.json").read_text())
    assert set(found["paths"]) == {"adam", "sgd"}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"density": "yes"}, "Expected density to be True or False but got 'yes'"),
        ({"sharpness": 0.0}, "Expected sharpness to be None or a radius > 0 but got 0.0"),
    ],
)
def test_bad_values_fail_before_training(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        loss_landscape_anim(2, output_filename=tmp_path / "x.gif", **kwargs)
    assert not (tmp_path / "checkpoints").exists()


def test_the_command_line_density_and_sharpness(tmp_path, capsys):
    out = tmp_path / "cli.gif"
    args = ["--epochs", "3", "--resolution", "4", "--frames", "2", "--no-progress"]
    assert main([*args, "--density", "--sharpness", "0.05", "--output", str(out)]) == 0
    with Image.open(tmp_path / "cli.density.png") as im:
        assert im.format == "PNG"
    found = json.loads((tmp_path / "cli.sharpness.json").read_text())
    assert found["rho"] == 0.05 and found["paths"]["adam"]["worst_case"]["value"] >= 0
    with pytest.raises(SystemExit):
        main([*args, "--sharpness", "-1", "--output", str(out)])
    assert "--sharpness: expected a positive finite number but got '-1'" in capsys.readouterr().err
