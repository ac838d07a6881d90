"""``interactive_surface``: the Plotly traces (surface, path with one point per row, current point),
the step slider, the loss-valued colour bar, and the self-contained HTML file."""

from __future__ import annotations

import dataclasses
import re
import sys

import numpy as np
import pytest

from loss_landscape_anim import LossGrid, Plane, Trajectory, interactive_surface
from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.params.layout import ParamLayout
from loss_landscape_anim.render.interactive import write_interactive_html
from loss_landscape_anim.render.surface import grid_loss_at

LAYOUT = ParamLayout(("w",), ((3,),))


def bowl() -> LossGrid:
    xs = np.linspace(-2.0, 2.0, 9)
    X, Y = np.meshgrid(xs, xs)
    return LossGrid.from_values(xs, xs, 0.02 * np.exp(X**2 + Y**2))


def plane_with_path(n: int = 6) -> Plane:
    path = np.stack([np.linspace(-1.5, 0.0, n), np.linspace(1.0, 0.0, n)], axis=1)
    directions = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return Plane(np.zeros(3), directions, path, np.zeros(n), np.array([0.7, 0.2]), "pca")


def test_traces_surface_path_and_current_point():
    grid, plane = bowl(), plane_with_path()
    fig = interactive_surface(grid, plane=plane)
    surface, path, point = fig.data
    assert (surface.type, path.type, point.type) == ("surface", "scatter3d", "scatter3d")
    np.testing.assert_array_equal(surface.z, np.log10(grid.loss))
    np.testing.assert_array_equal(surface.customdata, grid.loss)  # hover reads in losses
    assert len(path.x) == len(plane.path_2d)  # one point per recorded row
    np.testing.assert_array_equal(np.stack([path.x, path.y], axis=1), plane.path_2d)
    np.testing.assert_allclose(path.z, np.log10(grid_loss_at(grid, plane.path_2d)), rtol=1e-12)
    assert (point.x[0], point.y[0], point.z[0]) == (path.x[-1], path.y[-1], path.z[-1])
    ticks = [float(t) for t in surface.colorbar.ticktext]
    np.testing.assert_allclose(surface.colorbar.tickvals, np.log10(ticks), rtol=1e-12)
    assert fig.layout.scene.xaxis.title.text == "principal component 0, 70.0%"
    assert fig.layout.scene.zaxis.title.text == "loss (log scale)"


def test_the_slider_moves_the_current_point_along_the_path():
    grid = bowl()
    params = np.array([[0.5 * k, -0.2 * k, 1.0] for k in range(4)], dtype=np.float32)
    trajectory = Trajectory(params, np.ones(4), np.ones(4), np.array([0, 5, 10, 15]), LAYOUT)
    fig = interactive_surface(grid, plane=plane_with_path(), trajectory=trajectory)
    (slider,) = fig.layout.sliders
    assert [s.label for s in slider.steps] == ["0", "5", "10", "15"]
    path = fig.data[1]
    for k, position in enumerate(slider.steps):
        update, traces = position.args
        assert list(traces) == [2]  # the current-point trace
        for axis in ("x", "y", "z"):
            moved = np.asarray(update[axis]).ravel()
            assert moved.shape == (1,)
            assert moved[0] == pytest.approx(getattr(path, axis)[k], rel=1e-12)
    assert slider.active == 3


def test_slider_positions_are_capped():
    fig = interactive_surface(bowl(), plane=plane_with_path(1000), max_steps=50)
    assert len(fig.layout.sliders[0].steps) == 50
    assert len(fig.data[1].x) == 1000


def test_a_grid_alone_is_one_surface():
    fig = interactive_surface(bowl())
    assert [t.type for t in fig.data] == ["surface"]
    assert fig.layout.sliders == ()


def test_self_contained_html(tmp_path):
    out = write_interactive_html(
        interactive_surface(bowl(), plane=plane_with_path()), tmp_path / "surface.html"
    )
    page = out.read_text()
    assert page.lower().startswith("<!doctype html>")
    assert len(page) > 1_000_000  # plotly.js is inline
    # nothing to fetch: no script, style or image loaded from elsewhere
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    assert "Plotly.newPlot" in page
    assert [p.name for p in tmp_path.iterdir()] == ["surface.html"]


def test_errors():
    grid = bowl()
    with pytest.raises(TypeError, match="Expected grid to be a LossGrid but got dict"):
        interactive_surface({})
    flat = LossGrid.from_values(grid.xs, grid.ys, np.ones_like(grid.loss))
    with pytest.raises(ValueError, match="fewer than two distinct finite losses"):
        interactive_surface(flat)
    with pytest.raises(ValueError, match="Expected max_steps to be a positive integer"):
        interactive_surface(grid, max_steps=0)


def test_without_plotly_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(ImportError, match=r"pip install 'loss-landscape-anim\[interactive\]'"):
        interactive_surface(bowl())


def test_a_grid_of_another_plane_or_a_trajectory_of_another_model_is_refused():
    plane = plane_with_path()
    grid = dataclasses.replace(bowl(), plane_fingerprint=plane.fingerprint())
    other = dataclasses.replace(plane, directions=plane.directions[::-1])
    with pytest.raises(IncompatibleFileError, match="This loss grid was computed on another plane"):
        interactive_surface(grid, plane=other)
    layout = ParamLayout(("w",), ((4,),))
    trajectory = Trajectory(np.zeros((2, 4)), np.ones(2), np.ones(2), np.arange(2), layout)
    with pytest.raises(IncompatibleFileError, match=r"3 parameters .* but its rows hold 4"):
        interactive_surface(grid, plane=plane, trajectory=trajectory)


def test_the_same_figure_gives_the_same_html_file(tmp_path):
    """Plotly names the figure's element with a random id unless told one."""
    files = [
        write_interactive_html(
            interactive_surface(bowl(), plane=plane_with_path()), tmp_path / f"{k}.html"
        )
        for k in range(2)
    ]
    first, second = (f.read_bytes() for f in files)
    assert first == second
    assert b'id="loss-landscape"' in first
