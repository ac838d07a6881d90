"""``plot_landscape`` and the loss colour scale: the ``(fig, ax)`` contract, drawing into the
caller's axes (2D and 3D), colour bars in loss values on a log scale, the path on the surface."""

from __future__ import annotations

import dataclasses

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from loss_landscape_anim import LossGrid, Plane, Trajectory, plot_landscape
from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.params.layout import ParamLayout
from loss_landscape_anim.render.loss_scale import LossScale, nice_ticks
from loss_landscape_anim.render.surface import grid_loss_at
from tolerance import sum_tolerance

LAYOUT = ParamLayout(("w",), ((3,),))


def bowl(resolution: int = 15, low: float = 0.02) -> LossGrid:
    """Loss ``low * exp(x^2 + y^2)`` on [-2, 2]^2: spans about 3.5 decades."""
    xs = np.linspace(-2.0, 2.0, resolution)
    ys = np.linspace(-2.0, 2.0, resolution)
    X, Y = np.meshgrid(xs, ys)
    return LossGrid.from_values(xs, ys, low * np.exp(X**2 + Y**2))


def plane_with_path() -> Plane:
    path = np.stack([np.linspace(-1.5, 0.0, 6), np.linspace(1.0, 0.0, 6)], axis=1)
    directions = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return Plane(np.zeros(3), directions, path, np.zeros(6), np.array([0.7, 0.2]), "pca")


def colorbar_axes(fig: Figure):
    bars = [a for a in fig.axes if a.get_ylabel().startswith("loss")]
    assert len(bars) == 1
    return bars[0]


def tick_values(axis) -> np.ndarray:
    return np.array([float(t.get_text()) for t in axis.get_ticklabels()])


def test_a_new_figure_when_no_axes_are_given():
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()
    fig, ax = plot_landscape(bowl(), plane=plane_with_path())
    assert isinstance(fig, Figure)
    assert ax.figure is fig
    assert plt.get_fignums() == open_before  # no pyplot figure was created
    assert ax.get_xlabel() == "principal component 0, 70.0%"
    assert ax.get_ylabel() == "principal component 1, 20.0%"
    # the path: one line through the plane's path_2d, then its start and end markers
    line = next(ln for ln in ax.get_lines() if len(ln.get_xdata()) == 6)
    np.testing.assert_array_equal(line.get_xydata(), plane_with_path().path_2d)


def test_draws_into_the_callers_axes_and_leaves_the_rest_of_the_figure_alone():
    fig = Figure(figsize=(8, 3))
    left = fig.add_subplot(1, 2, 1)
    right = fig.add_subplot(1, 2, 2)
    right.plot([0, 1], [0, 1])
    got_fig, got_ax = plot_landscape(bowl(), ax=left, colorbar=False)
    assert got_fig is fig and got_ax is left
    assert len(left.collections) > 0  # the filled contours
    assert len(right.get_lines()) == 1 and len(right.collections) == 0
    assert len(fig.axes) == 2  # no colour bar axes added


def test_colour_bar_reads_in_loss_values_on_a_log_scale():
    grid = bowl()
    fig, _ = plot_landscape(grid)
    bar = colorbar_axes(fig)
    assert bar.get_yscale() == "log"
    assert bar.get_ylabel() == "loss (log scale)"
    ticks = tick_values(bar.yaxis)
    finite = grid.loss[np.isfinite(grid.loss)]
    assert len(ticks) >= 3
    assert ticks.min() >= finite.min() * (1 - 1e-9) and ticks.max() <= finite.max() * (1 + 1e-9)
    # round loss values (m * 10^k with m in 1, 2, 5 here), not ln(loss) numbers
    mantissas = ticks / 10.0 ** np.floor(np.log10(ticks))
    np.testing.assert_allclose(mantissas, np.round(mantissas), atol=sum_tolerance(10.0, 2))


def test_linear_scale_when_a_loss_is_not_positive():
    grid = bowl()
    shifted = LossGrid.from_values(grid.xs, grid.ys, grid.loss - 0.5)
    fig, _ = plot_landscape(shifted)
    bar = colorbar_axes(fig)
    assert bar.get_yscale() != "log"
    assert bar.get_ylabel() == "loss"


def test_linear_scale_when_asked():
    fig, _ = plot_landscape(bowl(), log=False)
    assert colorbar_axes(fig).get_yscale() != "log"


def test_surface_draws_into_a_3d_axes_with_the_path_on_the_surface():
    grid, plane = bowl(), plane_with_path()
    fig = Figure()
    ax3d = fig.add_subplot(projection="3d")
    got_fig, got_ax = plot_landscape(grid, plane=plane, ax=ax3d, view="surface")
    assert got_fig is fig and got_ax is ax3d
    path = next(ln for ln in ax3d.get_lines() if len(ln.get_data_3d()[0]) == 6)
    x, y, z = path.get_data_3d()
    np.testing.assert_array_equal(np.stack([x, y], axis=1), plane.path_2d)
    # the height of each point is log10 of the plane's loss under it
    expected = np.log10(grid_loss_at(grid, plane.path_2d))
    np.testing.assert_allclose(z, expected, rtol=sum_tolerance(1.0, 8))
    # the height axis reads in loss values
    labels = [t.get_text() for t in ax3d.get_zticklabels()]
    np.testing.assert_allclose(10.0 ** ax3d.get_zticks(), [float(s) for s in labels], rtol=1e-2)
    assert ax3d.get_zlabel() == "loss (log scale)"


def test_a_trajectory_is_projected_onto_the_plane():
    plane = plane_with_path()
    params = np.array([[0.5, -0.5, 3.0], [0.25, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    trajectory = Trajectory(params, np.ones(3), np.ones(3), np.arange(3), LAYOUT)
    _, ax = plot_landscape(bowl(), plane=plane, trajectory=trajectory)
    line = next(ln for ln in ax.get_lines() if len(ln.get_xdata()) == 3)
    np.testing.assert_allclose(line.get_xydata(), params[:, :2], atol=sum_tolerance(1.0, 3))


def test_argument_errors():
    grid = bowl()
    with pytest.raises(ValueError, match="Expected view to be one of 'contour', 'surface'"):
        plot_landscape(grid, view="wireframe")
    with pytest.raises(ValueError, match="view='surface' draws into a 3D axes"):
        plot_landscape(grid, view="surface", ax=Figure().add_subplot())
    with pytest.raises(ValueError, match="view='contour' draws into a 2D axes"):
        plot_landscape(grid, ax=Figure().add_subplot(projection="3d"))
    trajectory = Trajectory(np.zeros((2, 3)), np.ones(2), np.ones(2), np.arange(2), LAYOUT)
    with pytest.raises(ValueError, match="pass plane= as well"):
        plot_landscape(grid, trajectory=trajectory)
    with pytest.raises(TypeError, match="Expected grid to be a LossGrid but got ndarray"):
        plot_landscape(grid.loss)
    with pytest.raises(ValueError, match="Expected levels to be a positive integer but got 0"):
        plot_landscape(grid, levels=0)


def test_levels_as_loss_values():
    _, ax = plot_landscape(bowl(), levels=[0.02, 0.1, 1.0, 10.0, 100.0])
    filled = ax.collections[0]
    np.testing.assert_allclose(filled.levels, [0.02, 0.1, 1.0, 10.0, 100.0])


def test_a_grid_without_finite_values_says_so():
    grid = bowl()
    empty = LossGrid.from_values(grid.xs, grid.ys, np.full_like(grid.loss, np.nan))
    _, ax = plot_landscape(empty)
    assert [t.get_text() for t in ax.texts] == ["no finite loss values"]


# -- the scale and the heights -----------------------------------------------------------------


def test_loss_scale_levels_are_geometric_between_the_extremes():
    loss = np.array([[0.1, 1.0], [10.0, np.nan]])
    scale = LossScale.of(loss, 4)
    assert scale is not None and scale.log
    np.testing.assert_allclose(scale.levels, np.geomspace(0.1, 10.0, 5))
    assert scale.norm(1.0) == pytest.approx(0.5)
    assert LossScale.of(np.array([1.0, 1.0])) is None
    assert LossScale.of(np.array([np.nan, 2.0])) is None


@pytest.mark.parametrize(("low", "high"), [(0.05, 1.2), (1e-5, 1e5), (0.31, 0.38), (2.0, 3000)])
def test_nice_ticks_lie_in_the_range(low, high):
    ticks = nice_ticks(low, high, log=True)
    assert 2 <= len(ticks) <= 9
    assert ticks.min() >= low * (1 - 1e-9) and ticks.max() <= high * (1 + 1e-9)
    assert np.all(np.diff(ticks) > 0)


def test_grid_loss_at_interpolates_bilinearly():
    grid = bowl(5)
    at_vertices = grid_loss_at(grid, np.array([[grid.xs[1], grid.ys[3]], [grid.xs[4], grid.ys[0]]]))
    np.testing.assert_array_equal(at_vertices, [grid.loss[3, 1], grid.loss[0, 4]])
    middle = np.array([[(grid.xs[1] + grid.xs[2]) / 2, (grid.ys[0] + grid.ys[1]) / 2]])
    expected = grid.loss[0:2, 1:3].mean()
    np.testing.assert_allclose(grid_loss_at(grid, middle), expected, rtol=sum_tolerance(1.0, 8))
    outside = grid_loss_at(grid, np.array([[-99.0, 99.0]]))
    np.testing.assert_array_equal(outside, [grid.loss[-1, 0]])


def test_plot_does_not_change_global_style():
    before = dict(matplotlib.rcParams)
    plot_landscape(bowl(), plane=plane_with_path(), view="surface")
    assert dict(matplotlib.rcParams) == before


def test_a_grid_of_another_plane_is_refused():
    plane = plane_with_path()
    grid = dataclasses.replace(bowl(), plane_fingerprint=plane.fingerprint())
    plot_landscape(grid, plane=plane)  # its own plane
    other = dataclasses.replace(plane, origin=np.ones(3))
    with pytest.raises(
        IncompatibleFileError,
        match=rf"computed on another plane \(fingerprint {plane.fingerprint()}, this plane's is "
        rf"{other.fingerprint()}\)",
    ):
        plot_landscape(grid, plane=other)


@pytest.mark.parametrize("n_params", [2, 5])
def test_a_trajectory_of_another_model_is_refused(n_params):
    """Fewer parameters drew a garbage path, more raised numpy's broadcasting error."""
    layout = ParamLayout(("w",), ((n_params,),))
    trajectory = Trajectory(
        np.zeros((4, n_params)), np.ones(4), np.full(4, np.nan), np.arange(4), layout
    )
    with pytest.raises(
        IncompatibleFileError,
        match=rf"Expected a trajectory of a model with 3 parameters \(the plane's\) but its rows hold {n_params}",
    ):
        plot_landscape(bowl(), plane=plane_with_path(), trajectory=trajectory)


@pytest.mark.parametrize("low", [0.02, 1e-300, 1e-310])
def test_the_surface_colour_bar_reads_in_losses_down_to_the_smallest_floats(low, tmp_path):
    """Matplotlib's log norm takes losses below about 1e-287 for 0: the bar is drawn in heights
    (log10 of the loss) and labelled in losses."""
    grid = bowl(low=low)
    fig, _ = plot_landscape(grid, view="surface")
    fig.savefig(tmp_path / "surface.png")  # drawing the colour bar failed on tiny losses
    bar = colorbar_axes(fig)
    assert bar.get_ylabel() == "loss (log scale)"
    ticks = tick_values(bar.yaxis)
    finite = grid.loss[np.isfinite(grid.loss)]
    assert len(ticks) >= 3
    assert ticks.min() >= finite.min() * (1 - 1e-9) and ticks.max() <= finite.max() * (1 + 1e-9)
    # each label sits at the height of its loss (labels have 6 significant digits)
    np.testing.assert_allclose(bar.get_yticks(), np.log10(ticks), rtol=0, atol=1e-5)
    low_height, high_height = bar.get_ylim()
    np.testing.assert_allclose([low_height, high_height], np.log10([finite.min(), finite.max()]))
