"""Rendering: which rows become frames, the written animation, and the pixels of the drawn frames.

A tiny real pipeline (spirals, default MLP, 20 full-batch epochs, a 12 x 12 grid) is built once per
module; every test renders from it.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgb
from PIL import Image, ImageSequence

from loss_landscape_anim import (
    MLP,
    Animation,
    SpiralsDataModule,
    animate,
    compute_loss_grid,
    project,
    train,
)
from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.render import Style, frame_indices
from loss_landscape_anim.render.animator import path_views
from loss_landscape_anim.render.writers import _TRANSPARENT, PaletteMapper
from loss_landscape_anim.results import PathLosses

EPOCHS = 20
ROWS = EPOCHS + 1  # full batch: one step per epoch, plus the initial weights


# -- frame_indices ---------------------------------------------------------------------------


@pytest.mark.parametrize("n_frames", [None, ROWS, ROWS + 1, 10_000])
def test_frame_indices_all_rows(n_frames):
    np.testing.assert_array_equal(frame_indices(ROWS, n_frames), np.arange(ROWS))


def test_frame_indices_fewer_frames():
    got = frame_indices(101, 5)
    np.testing.assert_array_equal(got, [0, 25, 50, 75, 100])


def test_frame_indices_one_row():
    np.testing.assert_array_equal(frame_indices(1, 1), [0])
    np.testing.assert_array_equal(frame_indices(1, None), [0])


@pytest.mark.parametrize(("n_rows", "n_frames", "name"), [(0, 5, "n_rows"), (5, 0, "n_frames")])
def test_frame_indices_rejects_non_positive(n_rows, n_frames, name):
    with pytest.raises(ValueError, match=f"Expected {name} to be a positive integer but got 0"):
        frame_indices(n_rows, n_frames)


@settings(max_examples=60, deadline=None)
@given(n_rows=st.integers(1, 5000), n_frames=st.one_of(st.none(), st.integers(1, 6000)))
def test_frame_indices_properties(n_rows, n_frames):
    idx = frame_indices(n_rows, n_frames)
    assert idx.ndim == 1
    assert np.issubdtype(idx.dtype, np.integer)
    assert np.all(np.diff(idx) > 0), "strictly increasing"
    assert idx[0] == 0
    assert idx.min() >= 0 and idx.max() <= n_rows - 1
    if n_frames is None or n_frames >= n_rows:
        np.testing.assert_array_equal(idx, np.arange(n_rows))
    else:
        assert len(idx) == n_frames
        if n_frames >= 2:
            assert idx[-1] == n_rows - 1
            # evenly spread: no gap more than one row wider than the ideal spacing
            assert np.diff(idx).max() <= np.ceil((n_rows - 1) / (n_frames - 1)) + 1


# -- a tiny real pipeline ----------------------------------------------------------------------


@dataclasses.dataclass
class Pipeline:
    model: torch.nn.Module
    data: SpiralsDataModule
    trajectory: object
    plane: object
    grid: object


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    data = SpiralsDataModule()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MLP(2, 3)
    trajectory = train(model, data, EPOCHS, seed=0, progress=False)
    plane = project(trajectory, "pca")
    grid = compute_loss_grid(model, data, plane, resolution=12, progress=False)
    return Pipeline(model, data, trajectory, plane, grid)


@pytest.fixture(scope="module")
def two_paths(pipeline):
    """A second path (SGD, large step) from the same start, on the first path's plane, and a
    grid covering both."""
    sgd = train(
        pipeline.model,
        pipeline.data,
        EPOCHS,
        optimizer="sgd",
        learning_rate=0.5,
        seed=0,
        progress=False,
    )
    sgd_plane = pipeline.plane.with_path(sgd)
    grid = compute_loss_grid(
        pipeline.model,
        pipeline.data,
        pipeline.plane,
        resolution=12,
        extra_paths=[sgd_plane.path_2d],
        progress=False,
    )
    trajectories = {"adam": pipeline.trajectory, "sgd": sgd}
    planes = {"adam": pipeline.plane, "sgd": sgd_plane}
    return trajectories, planes, grid


def rgb255(color: str) -> np.ndarray:
    return np.array([round(255 * c) for c in to_rgb(color)])


def gif_frames(data: bytes) -> list[np.ndarray]:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "GIF"
        return [np.asarray(f.convert("RGB")).copy() for f in ImageSequence.Iterator(im)]


# -- animate: the written file -----------------------------------------------------------------


def test_animate_writes_a_gif(pipeline, tmp_path):
    out = tmp_path / "anim.gif"
    animation = animate(pipeline.trajectory, pipeline.plane, pipeline.grid, out, progress=False)
    assert isinstance(animation, Animation)
    assert animation.path == out
    assert animation.format == "gif"
    assert animation.n_frames == ROWS
    assert animation.fps == 15
    assert animation.size == (900, 600)
    assert animation.data is None
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.size == (900, 600)
        assert im.n_frames == ROWS
        # GIF delays are in hundredths of a second: 1000 / 15 ms is stored as 60 or 70 ms
        assert abs(im.info.get("duration") - 1000 / 15) < 10
    assert animation.read_bytes() == out.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["anim.gif"]


def test_animate_frames_are_the_drawn_frames_on_the_palette(pipeline):
    """Decoded GIF frames equal the figure's own frames mapped onto the fitted palette."""
    from loss_landscape_anim.render.figure import LandscapeFigure

    animation = animate(
        pipeline.trajectory, pipeline.plane, pipeline.grid, None, n_frames=4, progress=False
    )
    rows = frame_indices(ROWS, 4)
    assert animation.n_frames == 4
    decoded = gif_frames(animation.data)
    assert len(decoded) == 4

    style = Style()
    figure = LandscapeFigure(
        path_views(pipeline.trajectory, pipeline.plane, None, style),
        pipeline.grid,
        pipeline.plane,
        style,
    )
    mapper = PaletteMapper(*figure.palette_source(), n_colors=_TRANSPARENT)
    for row, got in zip(rows, decoded, strict=True):
        want = mapper.palette[mapper.map(figure.frame(int(row)))]
        np.testing.assert_array_equal(got, want, err_msg=f"row {row}")


def test_animate_to_memory_writes_nothing(pipeline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    animation = animate(
        pipeline.trajectory, pipeline.plane, pipeline.grid, None, n_frames=3, progress=False
    )
    assert animation.path is None
    assert animation.format == "gif"
    assert isinstance(animation.data, bytes)
    assert animation.data.startswith(b"GIF89a")
    assert len(gif_frames(animation.data)) == 3
    assert list(tmp_path.iterdir()) == []


def test_repr_html_embeds_the_gif(pipeline):
    animation = animate(
        pipeline.trajectory, pipeline.plane, pipeline.grid, None, n_frames=2, progress=False
    )
    html = animation._repr_html_()
    prefix = '<img src="data:image/gif;base64,'
    assert html.startswith(prefix)
    payload = html[len(prefix) :].split('"', 1)[0]
    assert base64.b64decode(payload) == animation.data


def test_repr_html_of_a_written_file_reads_it(pipeline, tmp_path):
    out = tmp_path / "anim.gif"
    animation = animate(
        pipeline.trajectory, pipeline.plane, pipeline.grid, out, n_frames=2, progress=False
    )
    assert base64.b64encode(out.read_bytes()).decode() in animation._repr_html_()


def test_animate_html_has_one_png_per_frame(pipeline, tmp_path):
    out = tmp_path / "anim.HTML"
    animation = animate(
        pipeline.trajectory, pipeline.plane, pipeline.grid, out, n_frames=3, progress=False
    )
    assert animation.format == "html"
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("data:image/png;base64,") == 3
    assert animation._repr_html_() == page


def test_style_sets_the_size(pipeline):
    style = Style(figsize=(4.0, 3.0), dpi=50, title=None, panels=False)
    animation = animate(
        pipeline.trajectory,
        pipeline.plane,
        pipeline.grid,
        None,
        n_frames=2,
        style=style,
        progress=False,
    )
    assert animation.size == (200, 150)
    assert gif_frames(animation.data)[0].shape == (150, 200, 3)


def test_animate_with_path_losses(pipeline):
    losses = PathLosses(
        true=np.linspace(1.1, 1.0, ROWS), projected=np.full(ROWS, np.nan)
    )  # NaN where not evaluated must draw, not fail
    animation = animate(
        pipeline.trajectory,
        pipeline.plane,
        pipeline.grid,
        None,
        n_frames=3,
        path_losses=losses,
        progress=False,
    )
    assert len(gif_frames(animation.data)) == 3


# -- the drawn pixels ----------------------------------------------------------------------------


def test_frame_pixels_show_the_path_growing(pipeline, tmp_path):
    """Frame 0 shows the path colour only at the start point; the last frame draws the path
    from the start to the final weights, inside the main axes."""
    from loss_landscape_anim.render.figure import LandscapeFigure

    style = Style()
    figure = LandscapeFigure(
        path_views(pipeline.trajectory, pipeline.plane, None, style),
        pipeline.grid,
        pipeline.plane,
        style,
    )
    width, height = figure.size
    x0, y0, x1, y1 = figure.ax.get_window_extent().extents
    # the axes in array coordinates (rows count from the top)
    rows, cols = slice(int(height - y1) + 1, int(height - y0)), slice(int(x0) + 1, int(x1))
    color = rgb255(style.path_colors[0])

    def path_pixels(t: int) -> np.ndarray:
        png = tmp_path / f"frame{t}.png"
        Image.fromarray(figure.frame(t)).save(png)
        with Image.open(png) as im:
            rgb = np.asarray(im.convert("RGB"))
        assert rgb.shape == (height, width, 3)
        ys, xs = np.nonzero((rgb[rows, cols] == color).all(axis=2))
        return np.stack([xs + cols.start, ys + rows.start], axis=1)  # (x, row) pixels

    def to_pixel(xy) -> np.ndarray:
        x, y = figure.ax.transData.transform(xy)
        return np.array([x, height - y])

    start, end = to_pixel(pipeline.plane.path_2d[0]), to_pixel(pipeline.plane.path_2d[-1])
    assert np.linalg.norm(start - end) > 50, "the test needs a path that moves on screen"
    marker_radius = style.point_size * style.dpi / 72 / 2

    first = path_pixels(0)
    assert len(first) > 10, "the start point is drawn"
    assert np.linalg.norm(first - start, axis=1).max() <= marker_radius + 2

    last = path_pixels(ROWS - 1)
    assert len(last) > 5 * len(first), "the whole path is drawn"
    near_end = np.linalg.norm(last - end, axis=1) <= marker_radius + 2
    assert near_end.sum() > 10, "the current point is at the final weights"
    assert np.linalg.norm(last - start, axis=1).min() <= 3, "the line starts at the first point"
    # a middle point of the path is covered by the line
    middle = to_pixel(pipeline.plane.path_2d[ROWS // 2])
    assert np.linalg.norm(last - middle, axis=1).min() <= 3

    # drawing frame 0 again restores the background: blitting leaves nothing behind
    again = path_pixels(0)
    np.testing.assert_array_equal(again, first)


def test_two_trajectories_draw_both_colours(two_paths):
    trajectories, planes, grid = two_paths
    style = Style(panels=False)  # only the paths carry the path colours
    animation = animate(trajectories, planes, grid, None, n_frames=3, style=style, progress=False)
    assert animation.n_frames == 3
    frames = gif_frames(animation.data)
    last = frames[-1]
    for k in range(2):
        color = rgb255(style.path_colors[k])
        count = int((last == color).all(axis=2).sum())
        assert count > 30, f"colour of path {k} ({style.path_colors[k]}) drawn on {count} pixels"


def test_two_trajectories_with_panels(two_paths, tmp_path):
    trajectories, planes, grid = two_paths
    out = tmp_path / "two.gif"
    animation = animate(trajectories, planes, grid, out, n_frames=2, progress=False)
    with Image.open(out) as im:
        assert im.n_frames == 2
        assert im.size == animation.size


def test_show_without_a_window_logs_where_to_look(pipeline, caplog):
    animation = animate(
        pipeline.trajectory, pipeline.plane, pipeline.grid, None, n_frames=2, progress=False
    )
    with caplog.at_level("WARNING", logger="loss_landscape_anim.rendering"):
        animation.show()
    assert "has no window" in caplog.text


# -- bad inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [0, -1, 2.5, True, "15"])
def test_bad_fps(pipeline, tmp_path, fps):
    with pytest.raises(ValueError, match="Expected fps to be a positive integer"):
        animate(pipeline.trajectory, pipeline.plane, pipeline.grid, tmp_path / "a.gif", fps=fps)
    assert list(tmp_path.iterdir()) == []


def test_bad_n_frames(pipeline, tmp_path):
    with pytest.raises(ValueError, match="Expected n_frames to be a positive integer but got 0"):
        animate(pipeline.trajectory, pipeline.plane, pipeline.grid, tmp_path / "a.gif", n_frames=0)
    assert list(tmp_path.iterdir()) == []


def test_bad_suffix_fails_before_rendering(pipeline, tmp_path):
    with pytest.raises(ValueError, match=r"\.gif, \.mp4, \.html but got '.*a\.txt'"):
        animate(pipeline.trajectory, pipeline.plane, pipeline.grid, tmp_path / "a.txt")
    assert list(tmp_path.iterdir()) == []


def test_plane_and_trajectory_lengths_must_match(pipeline, tmp_path):
    plane = pipeline.plane
    short = dataclasses.replace(
        plane, path_2d=plane.path_2d[:-1], off_plane_distance=plane.off_plane_distance[:-1]
    )
    with pytest.raises(ValueError, match=rf"to have {ROWS} points .* but it has {ROWS - 1}"):
        animate(pipeline.trajectory, short, pipeline.grid, tmp_path / "a.gif")
    assert list(tmp_path.iterdir()) == []


def test_one_plane_for_several_trajectories_is_refused(pipeline, two_paths):
    trajectories, _, grid = two_paths
    with pytest.raises(ValueError, match="one plane per trajectory"):
        animate(trajectories, pipeline.plane, grid, None)


def test_plane_names_must_match_trajectory_names(two_paths):
    trajectories, planes, grid = two_paths
    with pytest.raises(ValueError, match=r"same names as trajectories \['adam', 'sgd'\]"):
        animate(trajectories, {"adam": planes["adam"], "rmsprop": planes["sgd"]}, grid, None)


@pytest.mark.parametrize("trajectory", [None, {}, [1, 2], "path"])
def test_trajectory_of_the_wrong_type(pipeline, trajectory):
    with pytest.raises(TypeError, match="Expected trajectory to be a Trajectory or a non-empty"):
        animate(trajectory, pipeline.plane, pipeline.grid, None)


def mp4_facts(path: Path) -> tuple[int, str]:
    """(frame count, codec) of an MP4, read by the ffmpeg that ``[video]`` installs."""
    import subprocess

    import imageio_ffmpeg

    n_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    probe = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return n_frames, probe.stderr


def test_animate_writes_an_h264_mp4_with_the_ffmpeg_of_the_video_extra(pipeline, tmp_path):
    out = tmp_path / "anim.mp4"
    animation = animate(
        pipeline.trajectory, pipeline.plane, pipeline.grid, out, n_frames=8, progress=False
    )
    assert animation.format == "mp4" and animation.n_frames == 8
    head = out.read_bytes()[:64]
    assert head[4:8] == b"ftyp"
    assert b"avc1" in out.read_bytes()
    n_frames, probe = mp4_facts(out)
    assert n_frames == 8
    assert "Video: h264" in probe and "900x600" in probe
    assert [p.name for p in tmp_path.iterdir()] == ["anim.mp4"]


def test_mp4_without_ffmpeg_fails_before_rendering(pipeline, tmp_path, monkeypatch):
    import shutil
    import sys

    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    import loss_landscape_anim.render.figure as figure_module

    def no_drawing(*args, **kwargs):
        raise AssertionError("rendered before checking for ffmpeg")

    monkeypatch.setattr(figure_module, "LandscapeFigure", no_drawing)
    with pytest.raises(RuntimeError, match="pip install imageio-ffmpeg"):
        animate(pipeline.trajectory, pipeline.plane, pipeline.grid, tmp_path / "a.mp4")
    assert list(tmp_path.iterdir()) == []


def test_failed_rendering_keeps_the_previous_file(pipeline, tmp_path, monkeypatch):
    import loss_landscape_anim.render.figure as figure_module

    out = tmp_path / "anim.gif"
    out.write_bytes(b"previous animation")
    real_frame = figure_module.LandscapeFigure.frame
    calls = {"n": 0}

    def failing_frame(self, t):
        calls["n"] += 1
        if calls["n"] > 3:  # the palette's last frame, then two animation frames
            raise RuntimeError("drawing failed")
        return real_frame(self, t)

    monkeypatch.setattr(figure_module.LandscapeFigure, "frame", failing_frame)
    with pytest.raises(RuntimeError, match="drawing failed"):
        animate(pipeline.trajectory, pipeline.plane, pipeline.grid, out, progress=False)
    assert out.read_bytes() == b"previous animation"
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["anim.gif"]


def test_the_animation_colour_bar_reads_in_loss_values_on_a_log_scale(pipeline):
    from loss_landscape_anim.render.figure import LandscapeFigure

    style = Style()
    paths = path_views(pipeline.trajectory, pipeline.plane, None, style)
    figure = LandscapeFigure(paths, pipeline.grid, pipeline.plane, style)
    bars = [a for a in figure.fig.axes if a.get_ylabel() == "loss (log scale)"]
    assert len(bars) == 1 and bars[0].get_yscale() == "log"
    ticks = [float(t.get_text()) for t in bars[0].get_yticklabels()]
    loss = pipeline.grid.loss
    assert len(ticks) >= 2
    assert loss.min() * (1 - 1e-9) <= min(ticks) and max(ticks) <= loss.max() * (1 + 1e-9)


# -- the 3D view ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["gif", "mp4", "html"])
def test_surface_view_writes_every_format(pipeline, tmp_path, suffix):
    out = tmp_path / f"surface.{suffix}"
    animation = animate(
        pipeline.trajectory,
        pipeline.plane,
        pipeline.grid,
        out,
        n_frames=3,
        progress=False,
        view="surface",
    )
    assert animation.n_frames == 3 and animation.size == (900, 600)
    data = out.read_bytes()
    if suffix == "gif":
        frames = gif_frames(data)
        assert len(frames) == 3
        # the camera turns: the surface moves between the first and the last frame
        left = (slice(60, 540), slice(0, 500))
        assert (
            np.abs(frames[0][left].astype(int) - frames[-1][left]).sum(axis=2).astype(bool).mean()
            > 0.05
        )
    elif suffix == "mp4":
        assert data[4:8] == b"ftyp" and b"avc1" in data
        assert mp4_facts(out)[0] == 3
    else:
        assert data.count(b"data:image/png;base64,") == 3
        assert b"http://" not in data and b"https://" not in data


def test_surface_view_draws_the_path_at_the_planes_loss(pipeline):
    from loss_landscape_anim.render.surface import grid_loss_at
    from loss_landscape_anim.render.surface_figure import SurfaceFigure

    style = Style()
    paths = path_views(pipeline.trajectory, pipeline.plane, None, style)
    figure = SurfaceFigure(paths, pipeline.grid, pipeline.plane, style, turn=0.0)
    expected = np.log10(grid_loss_at(pipeline.grid, pipeline.plane.path_2d))
    np.testing.assert_allclose(figure.heights[0], expected, rtol=1e-12)
    figure.frame(5)
    x, y, z = figure.lines[0].get_data_3d()
    np.testing.assert_array_equal(np.stack([x, y], axis=1), pipeline.plane.path_2d[:6])
    np.testing.assert_array_equal(z, expected[:6])
    assert figure.ax.get_zlabel() == "loss (log scale)"


def test_bad_view(pipeline, tmp_path):
    with pytest.raises(
        ValueError, match="Expected view to be one of 'contour', 'surface' but got 'flat'"
    ):
        animate(pipeline.trajectory, pipeline.plane, pipeline.grid, tmp_path / "a.gif", view="flat")
    assert list(tmp_path.iterdir()) == []


# -- results that do not belong together -------------------------------------------------------


@pytest.fixture(scope="module")
def other_run(pipeline):
    """The same model and data, trained from other initial weights: same rows, same steps."""
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = MLP(2, 3)
    trajectory = train(model, pipeline.data, EPOCHS, seed=1, progress=False)
    return trajectory, project(trajectory, "pca")


def test_a_grid_of_another_plane_is_refused(pipeline, other_run, tmp_path):
    _, plane = other_run
    with pytest.raises(IncompatibleFileError, match="This loss grid was computed on another plane"):
        animate(
            pipeline.trajectory,
            plane.with_path(pipeline.trajectory),
            pipeline.grid,
            tmp_path / "a.gif",
        )
    assert list(tmp_path.iterdir()) == []


def test_a_trajectory_of_another_run_is_refused_even_with_as_many_rows(pipeline, other_run):
    trajectory, _ = other_run
    assert len(trajectory) == len(pipeline.trajectory)  # the shapes alone cannot tell
    with pytest.raises(IncompatibleFileError, match="The plane's path is not this trajectory's"):
        animate(trajectory, pipeline.plane, pipeline.grid, None)
    # projected onto the plane, it is drawn
    animation = animate(
        trajectory,
        pipeline.plane.with_path(trajectory),
        pipeline.grid,
        None,
        n_frames=2,
        progress=False,
    )
    assert animation.n_frames == 2


@pytest.mark.parametrize("hidden", [4, 16])
def test_a_trajectory_of_another_model_is_refused(pipeline, hidden):
    model = torch.nn.Sequential(
        torch.nn.Linear(2, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 3)
    )
    other = train(model, pipeline.data, 2, progress=False)
    n_params = pipeline.trajectory.n_params
    match = (
        rf"a model with {n_params} parameters \(the plane's\) but its rows hold {other.n_params}"
    )
    with pytest.raises(IncompatibleFileError, match=match):
        animate(other, pipeline.plane, pipeline.grid, None)


def test_path_losses_of_another_length_are_refused(pipeline):
    losses = PathLosses(np.ones(ROWS - 1), np.ones(ROWS - 1))
    with pytest.raises(
        ValueError, match=rf"path losses of 'adam' to have {ROWS} values .* have {ROWS - 1}"
    ):
        animate(pipeline.trajectory, pipeline.plane, pipeline.grid, None, path_losses=losses)


def test_decision_regions_of_rows_the_trajectory_does_not_have_are_refused(pipeline):
    from loss_landscape_anim.results import DecisionRegions

    regions = DecisionRegions(
        np.array([0, ROWS]),
        np.zeros((2, 4, 4), np.uint8),
        (-1.0, 1.0, -1.0, 1.0),
        np.zeros((3, 2)),
        np.zeros(3, np.int64),
        3,
    )
    with pytest.raises(
        ValueError, match=rf"decision_regions of rows below {ROWS} .* up to row {ROWS}"
    ):
        animate(pipeline.trajectory, pipeline.plane, pipeline.grid, None, decision_regions=regions)
