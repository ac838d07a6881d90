"""log_tensorboard, checked by reading the event file back with TensorBoard's own event reader:
tags, steps, the animation's frames, the figure, the mesh's vertices, faces and colours."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from loss_landscape_anim import IncompatibleFileError
from loss_landscape_anim.export import log_tensorboard
from loss_landscape_anim.render.images import landscape_image, loss_colors
from surfaces import linear_grid

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util
from torch.utils.tensorboard import SummaryWriter

EPS32 = float(np.finfo(np.float32).eps)


def read_events(folder) -> event_accumulator.EventAccumulator:
    reader = event_accumulator.EventAccumulator(
        str(folder),
        size_guidance={event_accumulator.IMAGES: 0, event_accumulator.TENSORS: 0},
    )
    reader.Reload()
    return reader


def mesh_part(reader, tag: str, part: str) -> np.ndarray:
    [event] = reader.Tensors(f"{tag}_{part}")
    return tensor_util.make_ndarray(event.tensor_proto)


def test_logs_the_animation_the_figure_and_the_mesh(tmp_path, landscape):
    writer = SummaryWriter(str(tmp_path))
    tags = log_tensorboard(
        writer,
        animation=landscape.animation,
        grid=landscape.grid,
        plane=landscape.plane,
        step=7,
        tag="spirals",
    )
    writer.close()
    assert tags == ["spirals/animation", "spirals/landscape", "spirals/surface"]
    reader = read_events(tmp_path)
    assert set(reader.Tags()["images"]) == {"spirals/animation", "spirals/landscape"}
    assert set(reader.Tags()["tensors"]) == {
        "spirals/surface_VERTEX",
        "spirals/surface_FACE",
        "spirals/surface_COLOR",
    }
    # the animation: our GIF as it was rendered, every frame of it
    [video] = reader.Images("spirals/animation")
    assert video.step == 7
    assert (video.width, video.height) == landscape.animation.size
    assert video.encoded_image_string == landscape.animation.read_bytes()
    with Image.open(io.BytesIO(video.encoded_image_string)) as gif:
        assert gif.format == "GIF" and gif.n_frames == landscape.animation.n_frames
    assert landscape.animation.n_frames == len(landscape.trajectory)
    # the figure: plot_landscape's picture
    [figure] = reader.Images("spirals/landscape")
    assert figure.step == 7
    with Image.open(io.BytesIO(figure.encoded_image_string)) as png:
        pixels = np.asarray(png.convert("RGB"))
    expected = landscape_image(landscape.grid, plane=landscape.plane)
    np.testing.assert_array_equal(pixels, expected)


def test_the_mesh_is_the_grid_surface(tmp_path):
    grid = linear_grid(5, 4)
    loss = grid.loss.copy()
    loss[0, 0] = np.nan  # a corner: one cell goes
    grid = type(grid).from_values(grid.xs, grid.ys, loss)
    writer = SummaryWriter(str(tmp_path))
    log_tensorboard(writer, grid=grid, step=3, log=True)
    writer.close()
    reader = read_events(tmp_path)
    vertices = mesh_part(reader, "loss_landscape/surface", "VERTEX")
    faces = mesh_part(reader, "loss_landscape/surface", "FACE")
    colors = mesh_part(reader, "loss_landscape/surface", "COLOR")
    finite = np.isfinite(loss.ravel())
    assert vertices.shape == (1, 19, 3) and colors.shape == (1, 19, 3)
    assert faces.shape == (1, 2 * 11, 3)
    X, Y = np.meshgrid(grid.xs, grid.ys)
    expected = np.column_stack([X.ravel(), Y.ravel(), np.log10(loss.ravel())])[finite]
    np.testing.assert_allclose(vertices[0], expected, rtol=EPS32, atol=EPS32)
    np.testing.assert_array_equal(colors[0], loss_colors(loss.ravel()[finite]))
    assert faces.min() == 0 and faces.max() == 18
    assert reader.Tensors("loss_landscape/surface_VERTEX")[0].step == 3


def test_only_what_is_given_is_logged(tmp_path, landscape):
    writer = SummaryWriter(str(tmp_path))
    assert log_tensorboard(writer, animation=landscape.animation) == ["loss_landscape/animation"]
    writer.close()
    reader = read_events(tmp_path)
    assert reader.Tags()["images"] == ["loss_landscape/animation"]
    assert reader.Tags()["tensors"] == []


def test_bad_arguments_are_refused(tmp_path, landscape):
    writer = SummaryWriter(str(tmp_path))
    with pytest.raises(ValueError, match="Nothing to log: pass animation=, grid= or both"):
        log_tensorboard(writer)
    with pytest.raises(TypeError, match=r"Expected writer to be a SummaryWriter .* but got str"):
        log_tensorboard("runs", grid=landscape.grid)
    with pytest.raises(TypeError, match="Expected animation to be an Animation or None but got"):
        log_tensorboard(writer, animation=b"GIF89a")
    with pytest.raises(ValueError, match=r"plane= and trajectory= draw the path .* pass grid="):
        log_tensorboard(writer, animation=landscape.animation, plane=landscape.plane)
    with pytest.raises(IncompatibleFileError, match="computed on another plane"):
        other = landscape.plane.__class__(
            landscape.plane.origin,
            landscape.plane.directions[::-1].copy(),
            landscape.plane.path_2d,
            landscape.plane.off_plane_distance,
        )
        log_tensorboard(writer, grid=landscape.grid, plane=other)
    with pytest.raises(ValueError, match="Expected step to be a non-negative integer but got -1"):
        log_tensorboard(writer, grid=landscape.grid, step=-1)
    with pytest.raises(ValueError, match="Expected tag to be a non-empty string but got ''"):
        log_tensorboard(writer, grid=landscape.grid, tag="")
    html = type(landscape.animation)(None, "html", 2, 15, (10, 10), b"<html></html>")
    with pytest.raises(ValueError, match=r"Expected a GIF animation for TensorBoard .* 'html'"):
        log_tensorboard(writer, animation=html)
    writer.close()


def test_a_missing_tensorboard_says_what_to_install(tmp_path, landscape, monkeypatch):
    writer = SummaryWriter(str(tmp_path))
    monkeypatch.setitem(sys.modules, "tensorboard.compat.proto.summary_pb2", None)
    with pytest.raises(ImportError, match=r"pip install 'loss-landscape-anim\[export\]'"):
        log_tensorboard(writer, animation=landscape.animation)
    writer.close()
