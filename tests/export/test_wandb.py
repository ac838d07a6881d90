"""log_wandb in offline mode (no network), checked by reading the run's files back: the GIF as
rendered, the figure's pixels, the Plotly surface's values."""

from __future__ import annotations

import base64
import json
import sys

import numpy as np
import pytest
from PIL import Image

from loss_landscape_anim.export import log_wandb
from loss_landscape_anim.render.images import landscape_image

wandb = pytest.importorskip("wandb")


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    run = wandb.init(project="loss-landscape-test", dir=str(tmp_path), mode="offline")
    yield run
    run.finish()
    wandb.teardown()  # the next wandb.init sets up afresh (its folder, its mode)


def plotly_array(value) -> np.ndarray:
    """An array of a Plotly figure's JSON: a list, or a typed array (base64 bytes, dtype, shape)."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", flat.size)).split(",")]
        return flat.reshape(shape).astype(float)
    return np.asarray(value, dtype=float)


def media(run, kind: str, key: str) -> list:
    from pathlib import Path

    return sorted((Path(run.dir) / "media" / kind / key).parent.glob(Path(key).name + "_*"))


def test_logs_the_animation_the_figure_and_the_surface(run, landscape):
    keys = log_wandb(
        run,
        animation=landscape.animation,
        grid=landscape.grid,
        plane=landscape.plane,
        trajectory=landscape.trajectory,
        step=4,
        tag="spirals",
    )
    assert keys == ["spirals/animation", "spirals/landscape", "spirals/surface"]
    [gif] = media(run, "videos", "spirals/animation")
    assert gif.suffix == ".gif"
    assert gif.read_bytes() == landscape.animation.read_bytes()
    with Image.open(gif) as image:
        assert image.n_frames == landscape.animation.n_frames
    [png] = media(run, "images", "spirals/landscape")
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"))
    expected = landscape_image(
        landscape.grid, plane=landscape.plane, trajectory=landscape.trajectory
    )
    np.testing.assert_array_equal(pixels, expected)
    [plotly] = media(run, "plotly", "spirals/surface")
    figure = json.loads(plotly.read_text())
    surface = next(t for t in figure["data"] if t["type"] == "surface")
    z = plotly_array(surface["z"])
    assert z.shape == landscape.grid.loss.shape
    np.testing.assert_array_equal(z, np.log10(landscape.grid.loss))
    path = next(t for t in figure["data"] if t["type"] == "scatter3d")
    assert len(plotly_array(path["x"])) == len(landscape.trajectory)


def test_an_mp4_animation_goes_in_as_it_is(run, landscape):
    mp4 = type(landscape.animation)(None, "mp4", 2, 15, (16, 16), b"\x00\x00\x00\x18ftypmp42")
    assert log_wandb(run, animation=mp4) == ["loss_landscape/animation"]
    [video] = media(run, "videos", "loss_landscape/animation")
    assert video.suffix == ".mp4" and video.read_bytes() == mp4.data


def test_bad_arguments_are_refused(run, landscape, monkeypatch):
    with pytest.raises(TypeError, match="Expected run to be a wandb Run but got str"):
        log_wandb("run", grid=landscape.grid)
    html = type(landscape.animation)(None, "html", 2, 15, (10, 10), b"<html></html>")
    with pytest.raises(ValueError, match=r"Expected a GIF or MP4 animation for W&B .* 'html'"):
        log_wandb(run, animation=html)
    with pytest.raises(ValueError, match="Nothing to log"):
        log_wandb(run)
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"pip install 'loss-landscape-anim\[wandb\]'"):
        log_wandb(run, grid=landscape.grid)


class RecordingRun:
    """Stands in for a run, to see the arguments of ``run.log``."""

    def __init__(self):
        self.calls: list = []

    def log(self, data, step=None):
        self.calls.append((sorted(data), step))


@pytest.mark.parametrize("step", [None, 0, 12])
def test_one_log_call_at_the_step_given(landscape, step):
    run = RecordingRun()
    log_wandb(run, animation=landscape.animation, grid=landscape.grid, step=step)
    keys = ["loss_landscape/animation", "loss_landscape/landscape", "loss_landscape/surface"]
    assert run.calls == [(keys, step)]
