"""``plot_curvature`` (the ratio map) and the curvature panel of the animation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from loss_landscape_anim import (
    CurvatureGrid,
    LossGrid,
    PathCurvature,
    Plane,
    Trajectory,
    animate,
    plot_curvature,
)
from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.params.layout import ParamLayout
from loss_landscape_anim.render.animator import path_views
from loss_landscape_anim.render.curvature import RATIO_CMAP, ratio_scale, save_curvature_png
from loss_landscape_anim.render.figure import LandscapeFigure
from loss_landscape_anim.render.style import Style

R = 6


def curvature_grid() -> CurvatureGrid:
    xs, ys = np.linspace(-1, 1, R), np.linspace(-2, 2, R)
    XX, YY = np.meshgrid(xs, ys)
    lambda_max = 2.0 + XX**2
    lambda_min = -0.3 * (1 + YY) * (YY > -1)
    return CurvatureGrid(xs, ys, lambda_max, lambda_min)


def loss_grid() -> LossGrid:
    xs, ys = np.linspace(-1, 1, 9), np.linspace(-2, 2, 9)
    XX, YY = np.meshgrid(xs, ys)
    return LossGrid.from_values(xs, ys, 1.0 + XX**2 + 0.5 * YY**2)


def test_the_ratio_map_in_a_new_figure():
    grid = curvature_grid()
    fig, ax = plot_curvature(grid)
    assert isinstance(fig, Figure) and isinstance(ax, Axes)
    (mesh,) = ax.collections
    np.testing.assert_allclose(np.ma.filled(mesh.get_array(), np.nan).reshape(R, R), grid.ratio)
    assert mesh.get_cmap().name == RATIO_CMAP
    assert mesh.norm.vmin == 0.0 and mesh.norm.vmax == ratio_scale(grid.ratio.ravel())
    assert ax.get_xlim() == (-1.0, 1.0) and ax.get_ylim() == (-2.0, 2.0)
    colorbar_axes = [a for a in fig.axes if a is not ax]
    assert "λmin / λmax" in colorbar_axes[0].get_ylabel()


def test_loss_contours_over_the_map_in_the_callers_axes(tmp_path):
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    path = np.array([[-1.0, -2.0], [0.0, 1.0], [0.5, 0.5]])
    got_fig, got_ax = plot_curvature(
        curvature_grid(), loss_grid=loss_grid(), ax=ax, vmax=0.5, paths=[path]
    )
    assert got_ax is ax and got_fig is fig
    assert len(ax.collections) >= 2, "the map and the contours"
    line, dot = ax.get_lines()[-2:]
    np.testing.assert_array_equal(line.get_xydata(), path)
    np.testing.assert_array_equal(dot.get_xydata(), path[-1:])
    assert line.get_color() == Style().path_colors[0]
    assert ax.get_legend() is not None and "loss minimum 1" in ax.get_legend().texts[0].get_text()
    assert ax.collections[0].norm.vmax == 0.5


def test_the_png_beside_an_output(tmp_path):
    path = save_curvature_png(
        tmp_path / "x.curvature.png",
        curvature_grid(),
        loss_grid=loss_grid(),
        axis_labels=("principal component 0", "principal component 1"),
    )
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (600, 500)
    assert [p.name for p in tmp_path.iterdir()] == ["x.curvature.png"]


def test_the_colour_scale_ends_at_a_round_ratio():
    assert ratio_scale(np.array([0.01, 0.05])) == 0.1
    assert ratio_scale(np.array([0.01, 0.15])) == 0.2
    assert ratio_scale(np.linspace(0, 3, 100)) == 1.0
    assert ratio_scale(np.array([])) == 1.0


def test_plot_curvature_refuses_other_types():
    with pytest.raises(TypeError, match="Expected curvature_grid to be a CurvatureGrid but got"):
        plot_curvature(loss_grid())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Expected loss_grid to be a LossGrid but got dict"):
        plot_curvature(curvature_grid(), loss_grid={})  # type: ignore[arg-type]


# -- the animation panel --------------------------------------------------------------------------

T = 11
LAYOUT = ParamLayout(("w",), ((4,),))


def path(optimizer: str, lr: float) -> tuple[Trajectory, Plane]:
    rng = np.random.default_rng(0)
    params = np.cumsum(rng.normal(size=(T, 4)), axis=0)
    xy = np.stack([np.linspace(-1, 0, T), np.linspace(-2, 0, T)], axis=1)
    params[:, :2] = params[-1, :2] + xy  # the path runs over the grid
    params = params.astype(np.float32)
    steps = np.arange(T) * 2
    trajectory = Trajectory(
        params, np.linspace(2, 1, T), np.full(T, 0.5), steps, LAYOUT, optimizer, lr
    )
    plane = Plane(params[-1].astype(np.float64), np.eye(2, 4), xy, np.zeros(T))
    return trajectory, plane.with_path(trajectory)


def curvature_of(trajectory: Trajectory, rows: list[int], scale: float = 1.0) -> PathCurvature:
    rows_a = np.array(rows)
    return PathCurvature(
        rows_a,
        trajectory.steps[rows_a],
        scale * (1.0 + rows_a),
        -0.1 * rows_a,
        trajectory.optimizer,
        trajectory.learning_rate,
    )


def test_the_panel_grows_with_the_frames_and_marks_two_over_eta():
    trajectory, plane = path("sgd", 0.5)
    curvature = curvature_of(trajectory, [0, 4, 6, 10])
    style = Style()
    views = path_views(trajectory, plane, None, style)
    figure = LandscapeFigure(views, loss_grid(), plane, style, curvature={views[0].name: curvature})
    ax = figure.side["curvature"]
    assert ax.get_ylabel() == "Hessian λ" and ax.get_xlabel() == "step"
    (threshold,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    np.testing.assert_array_equal(threshold.get_ydata(), [4.0, 4.0])  # 2 / 0.5
    assert "2/η = 4" in [t.get_text() for t in ax.get_legend().texts]
    low, high = ax.get_ylim()
    assert low < -1.0 and high > 11.0
    curves = [c for c in figure.curves if c[0].axes is ax]
    assert len(curves) == 2
    figure.frame(5)  # step 10: rows 0 and 4 are shown
    top, bottom = curves[0][0], curves[1][0]
    np.testing.assert_array_equal(top.get_xdata(), [0, 8])
    np.testing.assert_array_equal(top.get_ydata(), [1.0, 5.0])
    np.testing.assert_array_equal(bottom.get_ydata(), [0.0, -0.4])
    figure.frame(T - 1)
    assert len(top.get_xdata()) == 4


def test_no_threshold_for_other_optimizers_and_one_curve_pair_per_path():
    adam, adam_plane = path("adam", 0.01)
    sgd, sgd_plane = path("sgd", 0.25)
    animation = animate(
        {"adam": adam, "sgd": sgd},
        {"adam": adam_plane, "sgd": sgd_plane},
        loss_grid(),
        None,
        curvature={"adam": curvature_of(adam, [0, 10]), "sgd": curvature_of(sgd, [0, 5, 10], 2)},
        n_frames=3,
        progress=False,
    )
    assert animation.n_frames == 3 and animation.data is not None
    style = Style()
    views = path_views({"adam": adam}, {"adam": adam_plane}, None, style)
    figure = LandscapeFigure(
        views, loss_grid(), adam_plane, style, curvature={"adam": curvature_of(adam, [0, 10])}
    )
    ax = figure.side["curvature"]
    assert not [line for line in ax.get_lines() if line.get_linestyle() == "--"]


def test_a_single_path_curvature_and_a_file(tmp_path):
    trajectory, plane = path("sgd", 0.5)
    out = tmp_path / "c.gif"
    animate(
        trajectory,
        plane,
        loss_grid(),
        out,
        curvature=curvature_of(trajectory, [0, 10]),
        n_frames=2,
        progress=False,
    )
    with Image.open(out) as im:
        assert im.n_frames == 2 and im.size == (900, 600)


def test_curvature_of_unknown_paths_or_types_is_refused():
    trajectory, plane = path("sgd", 0.5)
    with pytest.raises(
        ValueError, match=r"curvature names paths that are not animated: \['adam'\]"
    ):
        animate(
            trajectory,
            plane,
            loss_grid(),
            None,
            curvature={"adam": curvature_of(trajectory, [0])},
            progress=False,
        )
    with pytest.raises(TypeError, match="Expected curvature to be a PathCurvature or a mapping"):
        animate(trajectory, plane, loss_grid(), None, curvature=[1, 2], progress=False)


def test_curvature_of_another_run_is_refused():
    """Same steps, optimizer and learning rate: only the fingerprint tells the runs apart."""
    trajectory, plane = path("sgd", 0.5)
    other = Trajectory(
        np.asarray(trajectory.params) + 1.0,
        trajectory.loss,
        trajectory.accuracy,
        trajectory.steps,
        LAYOUT,
        "sgd",
        0.5,
    )
    curvature = dataclasses.replace(
        curvature_of(other, [0, 10]), trajectory_fingerprint=other.fingerprint()
    )
    with pytest.raises(
        IncompatibleFileError,
        match=rf"The curvature of 'sgd' was computed along another path: its trajectory "
        rf"fingerprint is {other.fingerprint()}, this trajectory's {trajectory.fingerprint()}",
    ):
        animate(trajectory, plane, loss_grid(), None, curvature=curvature, progress=False)
    own = dataclasses.replace(curvature, trajectory_fingerprint=trajectory.fingerprint())
    animate(trajectory, plane, loss_grid(), None, curvature=own, n_frames=2, progress=False)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"steps": np.array([0, 18])}, "its row 10 is at step 18, this trajectory's at step 20"),
        ({"rows": np.array([0, 11]), "steps": np.array([0, 22])}, "not rows of this 11-row"),
        ({"optimizer": "adam"}, "its optimizer is 'adam', this trajectory's 'sgd'"),
        ({"learning_rate": 0.1}, "its learning rate is 0.1, this trajectory's 0.5"),
    ],
)
def test_curvature_without_a_fingerprint_is_checked_by_its_steps(change, match):
    """Files written before curvature recorded its trajectory."""
    trajectory, plane = path("sgd", 0.5)
    curvature = dataclasses.replace(curvature_of(trajectory, [0, 10]), **change)
    with pytest.raises(IncompatibleFileError, match=match):
        animate(trajectory, plane, loss_grid(), None, curvature=curvature, progress=False)


def test_plot_curvature_refuses_a_loss_grid_of_another_plane():
    grid = dataclasses.replace(curvature_grid(), plane_fingerprint="a" * 16)
    plot_curvature(grid, loss_grid=dataclasses.replace(loss_grid(), plane_fingerprint="a" * 16))
    plot_curvature(grid, loss_grid=loss_grid())  # a grid that does not record its plane
    with pytest.raises(
        IncompatibleFileError,
        match=r"The loss grid and the curvature grid lie on different planes \(fingerprints "
        r"bbbbbbbbbbbbbbbb and aaaaaaaaaaaaaaaa\)",
    ):
        plot_curvature(grid, loss_grid=dataclasses.replace(loss_grid(), plane_fingerprint="b" * 16))
