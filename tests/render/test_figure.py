"""The figure of a frame in the cases a hard user met: losses <= 0, a constant loss, non-finite
regions, a minimum on a corner, wide tick labels, a one-row path. Each draws a readable frame."""

from __future__ import annotations

import numpy as np
import pytest

from loss_landscape_anim.directions import project
from loss_landscape_anim.params.layout import ParamLayout
from loss_landscape_anim.render import Style
from loss_landscape_anim.render.animator import path_views
from loss_landscape_anim.render.figure import LandscapeFigure
from loss_landscape_anim.results import LossGrid, PathLosses, Plane, Trajectory

LAYOUT = ParamLayout(("w",), ((2,),))
PATH = np.stack([np.linspace(-3, 0, 12), np.sin(np.linspace(0, 3, 12))], 1)


def trajectory(points: np.ndarray, loss=None) -> Trajectory:
    T = len(points)
    loss = np.linspace(1.2, 0.4, T) if loss is None else np.asarray(loss, float)
    return Trajectory(
        np.asarray(points, float), loss, np.linspace(0.3, 0.9, T), np.arange(T), LAYOUT
    )


def plane_of(t: Trajectory) -> Plane:
    return project(t, "custom", directions=(np.array([1.0, 0.0]), np.array([0.0, 1.0])))


def grid_of(plane: Plane, f, n: int = 24) -> LossGrid:
    low, high = plane.path_2d.min(0), plane.path_2d.max(0)
    pad = np.where(high > low, 0.3 * (high - low), 1.0)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], n)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], n)
    X, Y = np.meshgrid(xs, ys)
    return LossGrid.from_values(xs, ys, f(X, Y))


def figure(t: Trajectory, grid_fn, losses: PathLosses | None = None, scale=(1.0, 1.0)):
    t = trajectory(t.params * np.asarray(scale), t.loss) if scale != (1.0, 1.0) else t
    plane = plane_of(t)
    grid = grid_of(plane, grid_fn)
    style = Style()
    fig = LandscapeFigure(path_views(t, plane, losses, style), grid, plane, style)
    return fig, grid


def texts(fig: LandscapeFigure) -> list[str]:
    return [t.get_text() for t in fig.ax.texts]


def legend_texts(fig: LandscapeFigure) -> list[str]:
    legend = fig.ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def colorbar_label(fig: LandscapeFigure) -> str:
    labels = [ax.get_ylabel() for ax in fig.fig.axes if ax not in (fig.ax, *fig.side.values())]
    return labels[0] if labels else ""


def test_losses_below_zero_are_drawn_on_a_linear_scale() -> None:
    fig, grid = figure(
        trajectory(PATH, np.linspace(-1, -4, 12)), lambda X, Y: -4.48 + 0.5 * X**2 + Y**2
    )
    assert fig.ax.collections, "no contours"
    assert colorbar_label(fig) == "loss"
    assert texts(fig) == []
    assert legend_texts(fig) == [f"grid minimum, loss {grid.loss_min:.4g}"]
    assert legend_texts(fig)[0].startswith("grid minimum, loss -4.4")


def test_positive_losses_keep_the_log_scale() -> None:
    fig, _ = figure(trajectory(PATH), lambda X, Y: 1 + X**2 + Y**2)
    assert colorbar_label(fig) == "loss (log scale)"


def test_a_constant_loss_is_said_so_without_a_minimum() -> None:
    fig, _ = figure(trajectory(PATH, np.zeros(12)), lambda X, Y: 0 * X)  # includes -0.0
    assert texts(fig) == ["the loss is 0 everywhere on this plane"]
    assert fig.ax.get_legend() is None


def test_non_finite_regions_are_hatched_grey_and_explained() -> None:
    fig, grid = figure(
        trajectory(PATH), lambda X, Y: np.where(X < -3, np.nan, np.exp(0.2 * (X**2 + Y**2)))
    )
    assert legend_texts(fig) == [
        f"grid minimum, loss {grid.loss_min:.4g}",
        "loss not finite (NaN or inf)",
    ]
    assert fig.ax.patch.get_hatch() == "xxx"
    image = fig.frame(0)
    x, y = fig.ax.transData.transform((grid.xs[0], (grid.ys[0] + grid.ys[-1]) / 2))
    row, col = int(image.shape[0] - y), int(x) + 6
    patch = image[row - 3 : row + 4, col - 3 : col + 4, :3].astype(int)
    assert 150 < patch.mean() < 240 and patch.std() > 5  # grey with hatch lines, not white paper


def test_finite_grids_keep_a_plain_background() -> None:
    fig, _ = figure(trajectory(PATH), lambda X, Y: 1 + X**2 + Y**2)
    assert fig.ax.patch.get_hatch() is None


@pytest.mark.parametrize("corner", [(-1, -1), (1, 1), (1, -1)])
def test_a_minimum_on_a_corner_stays_inside_the_axes(corner) -> None:
    cx, cy = corner
    fig, grid = figure(trajectory(PATH), lambda X, Y: 50 - 3 * cx * X - 3 * cy * Y)
    assert grid.argmin[0] in (grid.xs[0], grid.xs[-1])
    star = next(line for line in fig.ax.lines if line.get_marker() == "*")
    x, y = star.get_transform().transform(np.column_stack(star.get_data()))[0]
    radius = star.get_markersize() / 2 * fig.fig.dpi / 72
    box = fig.ax.get_window_extent()
    assert box.x0 + radius - 1 <= x <= box.x1 - radius + 1
    assert box.y0 + radius - 1 <= y <= box.y1 - radius + 1


def test_an_inner_minimum_is_drawn_where_it_is() -> None:
    fig, grid = figure(trajectory(PATH), lambda X, Y: 1 + (X + 1) ** 2 + Y**2)
    star = next(line for line in fig.ax.lines if line.get_marker() == "*")
    np.testing.assert_array_equal(np.ravel(star.get_data()), grid.argmin)
    assert star.get_transform() == fig.ax.transData


def test_wide_tick_labels_keep_the_y_label_inside_the_figure() -> None:
    fig, _ = figure(
        trajectory(PATH),
        lambda X, Y: 1 + X**2 + (Y / 1e5) ** 2,
        scale=(1.0, 150000.0),
    )
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert fig.ax.yaxis.label.get_window_extent(renderer).x0 >= 0
    assert fig.ax.get_tightbbox(renderer).x0 >= 0
    assert fig.side["loss"].get_position().x0 > fig.ax.get_position().x1  # panels still right


def test_a_one_row_loss_panel_has_no_offset() -> None:
    t = trajectory(PATH[-1:], [1.106388])
    losses = PathLosses(np.array([1.1063881]), np.array([1.1063880]))
    fig, _ = figure(t, lambda X, Y: 1.106388 + X**2 + Y**2, losses)
    fig.canvas.draw()
    panel = fig.side["loss"]
    assert panel.yaxis.get_offset_text().get_text() == ""
    low, high = panel.get_ylim()
    assert low < 1.1063880 and high > 1.1063881 and high - low > 0.05
