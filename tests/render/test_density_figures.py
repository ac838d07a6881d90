"""``plot_density`` and ``plot_path_spectrum``: what they draw is the result's smoothed density
(a log axis floored below the peak, a heat strip of log10 density), into a new figure or the
caller's axes; PNGs that open; bad inputs refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from PIL import Image

from loss_landscape_anim import HessianDensity, PathCurvature, plot_density, plot_path_spectrum
from loss_landscape_anim.render.density import DENSITY_FLOOR
from loss_landscape_anim.render.spectrum import SPECTRUM_CMAP, spectrum_image


def density(shift: float = 0.0) -> HessianDensity:
    nodes = np.array([[-0.1, 0.0, 0.2, 3.0], [-0.05, 0.01, 0.5, 2.8]]) + shift
    weights = np.array([[0.1, 0.7, 0.19, 0.01], [0.2, 0.6, 0.18, 0.02]])
    return HessianDensity(nodes, weights, 100)


def path(optimizer: str = "sgd") -> PathCurvature:
    rows = [density(0.0), density(0.4), density(0.9)]
    return PathCurvature(
        np.array([0, 5, 10]),
        np.array([0, 50, 100]),
        np.array([3.0, 3.4, 3.9]),
        np.array([-0.1, -0.05, -0.01]),
        optimizer,
        0.8,
        density_nodes=np.stack([d.nodes for d in rows]),
        density_weights=np.stack([d.weights for d in rows]),
        n_params=100,
    )


def png(fig: Figure) -> Image.Image:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    buffer.seek(0)
    return Image.open(buffer)


def test_the_density_line_is_the_smoothed_density_on_a_log_axis():
    d = density()
    fig, ax = plot_density(d, sigma=0.05, n_grid=400)
    assert isinstance(fig, Figure) and isinstance(ax, Axes)
    (line,) = ax.get_lines()
    x, y = line.get_xdata(), line.get_ydata()
    assert x.size == 400 and x[0] == pytest.approx(-0.1 - 0.25) and x[-1] == pytest.approx(3.25)
    np.testing.assert_allclose(y, d.density(x, 0.05))
    assert ax.get_yscale() == "log"
    low, high = ax.get_ylim()
    assert low == pytest.approx(y.max() * DENSITY_FLOOR) and high > y.max()
    assert "Hessian" in ax.get_xlabel() and "σ = 0.05" in ax.get_ylabel()
    assert png(fig).size[0] > 100


def test_several_densities_overlay_with_labels_in_the_callers_axes():
    fig = Figure()
    ax = fig.add_subplot()
    out_fig, out_ax = plot_density({"adam": density(), "sgd": density(0.5)}, ax=ax, log=False)
    assert out_fig is fig and out_ax is ax
    assert [line.get_label() for line in ax.get_lines()] == ["adam", "sgd"]
    assert ax.get_yscale() == "linear"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["adam", "sgd"]


def test_the_spectrum_strip_is_log10_of_each_rows_density():
    curvature = path()
    fig, ax = plot_path_spectrum(curvature, sigma=0.05, n_grid=120)
    (mesh,) = ax.collections
    grid, image, sigma = spectrum_image(curvature, 0.05, 120)
    assert image.shape == (120, 3) and sigma == 0.05
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(120, 3), image)
    np.testing.assert_allclose(
        image[:, 1],
        np.log10(
            np.maximum(curvature.density(1).density(grid, 0.05), 10 ** image.max() * DENSITY_FLOOR)
        ),
    )
    assert mesh.get_cmap().name == SPECTRUM_CMAP
    lines = ax.get_lines()
    np.testing.assert_array_equal(lines[0].get_ydata(), curvature.lambda_max)
    # 2 / eta = 2.5 for SGD at 0.8, within the axis.
    assert lines[1].get_ydata()[0] == pytest.approx(2.5)
    assert ax.get_ylim()[0] <= 2.5 <= ax.get_ylim()[1]
    assert png(fig).size[1] > 100


def test_no_threshold_for_adam_and_densities_are_required():
    fig, ax = plot_path_spectrum(path("adam"), colorbar=False, title=None)
    assert len(ax.get_lines()) == 1 and len(fig.axes) == 1 and ax.get_title() == ""
    plain = PathCurvature(np.array([0, 1]), np.array([0, 1]), np.ones(2), np.zeros(2))
    with pytest.raises(ValueError, match=r"curvature_along_path\(\.\.\., density=True\)"):
        plot_path_spectrum(plain)


def test_bad_inputs_are_refused():
    with pytest.raises(TypeError, match="Expected density to be a HessianDensity or a mapping"):
        plot_density(np.zeros(3))
    with pytest.raises(ValueError, match="Expected n_grid to be an integer >= 2 but got 1"):
        plot_density(density(), n_grid=1)
    with pytest.raises(ValueError, match="Expected sigma to be a finite number > 0 but got -1"):
        plot_density(density(), sigma=-1.0)
    with pytest.raises(TypeError, match="Expected curvature to be a PathCurvature"):
        plot_path_spectrum(density())
