"""``plot_connectivity`` and ``animate_connectivity``: every drawn loss against direct evaluation
(the contours on the curve's plane, the straight line's and the curve's losses: each point loaded
into a copy of the model), the curve drawn at its projection, the written GIF / HTML / MP4, and
the errors. A small real pipeline (a small MLP on spirals from two seeds, a short curve training)
is built once per module."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image, ImageSequence

from loss_landscape_anim import (
    MLP,
    Curve,
    LossEvaluator,
    Style,
    animate_connectivity,
    compute_loss_grid,
    connect,
    loss_along_curve,
    loss_along_line,
    plot_connectivity,
    train,
)
from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.render.connectivity_figure import ConnectivityFigure
from oracle import RTOL, loss_at, spirals


@pytest.fixture(scope="module")
def scene():
    X, y = spirals()

    def mlp(seed: int) -> MLP:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return MLP(2, 3, hidden_dim=10, learning_rate=0.02)

    a, b = (train(mlp(s), (X, y), 40, seed=0, progress=False).final_params for s in (1, 2))
    model = mlp(1)
    curve = connect(
        model, (X, y), a, b, epochs=24, record_every=4, labels=("one", "two"), progress=False
    )
    plane = curve.plane()
    grid = compute_loss_grid(
        model, (X, y), plane, resolution=8, extra_paths=curve.history_paths(plane), progress=False
    )
    line = loss_along_line(model, (X, y), a, b, n_points=9, labels=("one", "two"))
    evaluator = LossEvaluator(model, (X, y))
    losses = {
        row: loss_along_curve(curve=curve, n_points=9, row=row, evaluator=evaluator)
        for row in range(curve.n_rows)
    }
    return model, X, y, curve, plane, grid, line, losses


def test_every_drawn_loss_is_the_loss_evaluated_directly(scene):
    model, X, y, curve, plane, grid, line, losses = scene
    for i, j in ((0, 0), (3, 5), (7, 7)):
        weights = plane.point(grid.xs[j], grid.ys[i])
        assert grid.loss[i, j] == pytest.approx(loss_at(model, weights, X, y), rel=RTOL)
    figure = ConnectivityFigure(curve, grid, plane, Style(), line, losses)
    for row in (0, 3, curve.n_rows - 1):
        figure.frame(row)
        ts, drawn = figure.along.get_data()
        points = curve.points(np.asarray(ts), row=row)
        direct = [loss_at(model, w, X, y) for w in points]
        np.testing.assert_allclose(drawn, direct, rtol=RTOL)
    (straight,) = [ln for ln in figure.side_along.lines if ln.get_label() == "straight line"]
    alphas, drawn = straight.get_data()
    a, b = curve.start, curve.end
    direct = [loss_at(model, a + t * (b - a), X, y) for t in alphas]
    np.testing.assert_allclose(drawn, direct, rtol=RTOL)


def test_the_curve_is_drawn_at_its_projection(scene):
    _, _, _, curve, plane, grid, line, losses = scene
    fig, ax = plot_connectivity(curve, grid, line=line, curve_line=losses[curve.n_rows - 1])
    assert isinstance(fig, Figure)
    by_label = {ln.get_label(): ln for ln in ax.lines}
    drawn = np.column_stack(
        by_label[f"curve, barrier {losses[curve.n_rows - 1].barrier:.3g}"].get_data()
    )
    points = curve.points(np.linspace(0, 1, len(drawn)))
    np.testing.assert_allclose(drawn, (points - plane.origin) @ plane.directions.T, atol=1e-9)
    bend = np.column_stack(by_label["bend"].get_data())
    np.testing.assert_allclose(bend[0], (curve.bends[0] - plane.origin) @ plane.directions.T)
    straight = np.column_stack(by_label[f"straight line, barrier {line.barrier:.3g}"].get_data())
    length = np.linalg.norm(curve.end - curve.start)
    np.testing.assert_allclose(straight, [[0, 0], [length, 0]], atol=1e-9 * length)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(text.startswith("grid minimum") for text in legend)
    other = Figure().add_subplot()
    fig2, ax2 = plot_connectivity(curve, grid, ax=other, row=0)
    assert ax2 is other and fig2 is other.figure


def test_animation_frames_move_the_curve_and_write_a_gif(scene, tmp_path):
    _, _, _, curve, plane, grid, line, losses = scene
    figure = ConnectivityFigure(curve, grid, plane, Style(), line, losses)
    first, last = figure.frame(0), figure.frame(curve.n_rows - 1)
    assert first.shape == (600, 900, 4) and not np.array_equal(first, last)
    out = tmp_path / "curve.gif"
    animation = animate_connectivity(
        curve, grid, out, line=line, curve_losses=losses, n_frames=4, progress=False
    )
    assert animation.n_frames == 4 and animation.path == out and animation.size == (900, 600)
    with Image.open(out) as im:
        assert im.size == (900, 600)
        assert sum(1 for _ in ImageSequence.Iterator(im)) == 4


def test_html_and_mp4_and_memory(scene, tmp_path):
    _, _, _, curve, _, grid, _, _ = scene
    page = animate_connectivity(curve, grid, tmp_path / "curve.html", progress=False)
    frames = re.findall(r'"data:image/png;base64,([^"]+)"', page.path.read_text())
    assert len(frames) == curve.n_rows
    with Image.open(io.BytesIO(base64.b64decode(frames[0]))) as im:
        assert im.size == (900, 600)
    video = animate_connectivity(curve, grid, tmp_path / "curve.mp4", n_frames=3, progress=False)
    import imageio_ffmpeg

    assert imageio_ffmpeg.count_frames_and_secs(str(video.path))[0] == 3
    in_memory = animate_connectivity(curve, grid, None, n_frames=2, progress=False)
    assert in_memory.data[:6] == b"GIF89a" and in_memory.path is None


def test_bad_inputs_are_refused(scene, tmp_path):
    curve, grid, line = scene[3], scene[5], scene[6]
    other_plane = curve.at_row(curve.n_rows - 2).plane()
    with pytest.raises(IncompatibleFileError, match="computed on another plane"):
        plot_connectivity(curve, grid, plane=other_plane)
    with pytest.raises(TypeError, match="Expected curve to be a Curve but got LossGrid"):
        plot_connectivity(grid, grid)
    with pytest.raises(ValueError, match=r"rows of the curve's history \(0 to 6\) but got 9"):
        animate_connectivity(curve, grid, None, curve_losses={9: line}, progress=False)
    with pytest.raises(TypeError, match=r"Expected curve_losses\[0\] to be a LossLine"):
        animate_connectivity(curve, grid, None, curve_losses={0: grid}, progress=False)
    with pytest.raises(ValueError, match="Expected output to end in one of"):
        animate_connectivity(curve, grid, tmp_path / "curve.txt", progress=False)
    assert not list(tmp_path.iterdir())


def test_a_curve_built_by_hand_animates_in_one_frame(scene):
    _, _, _, curve, plane, grid, _, _ = scene
    by_hand = Curve(curve.start, curve.end, curve.bends)  # no training losses, no history
    animation = animate_connectivity(by_hand, grid, None, plane=plane, progress=False)
    assert animation.n_frames == 1 and animation.data[:6] == b"GIF89a"
