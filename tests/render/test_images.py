"""Pictures as arrays: a figure rasterised, loss colours on the animation's scale."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from loss_landscape_anim.render.images import MISSING_COLOR, figure_image, loss_colors


def test_figure_image_is_the_figure_in_pixels():
    fig = Figure(figsize=(2.0, 1.0), dpi=50, facecolor=(1.0, 0.0, 0.0))
    image = figure_image(fig)
    assert image.shape == (50, 100, 3) and image.dtype == np.uint8
    assert (image == [255, 0, 0]).all()


def expected_colors(values: np.ndarray, norm) -> np.ndarray:
    rgba = matplotlib.colormaps["viridis"](norm(values))
    return np.round(255 * np.asarray(rgba)[:, :3]).astype(np.uint8)


def test_loss_colors_on_a_log_scale_and_grey_where_not_finite():
    values = np.array([0.01, 0.1, np.nan, 1.0, np.inf, 0.5])
    colors = loss_colors(values)
    finite = np.isfinite(values)
    np.testing.assert_array_equal(colors[~finite], [MISSING_COLOR, MISSING_COLOR])
    np.testing.assert_array_equal(
        colors[finite], expected_colors(values[finite], LogNorm(0.01, 1.0))
    )
    # 0.1 is halfway on a log scale between 0.01 and 1: viridis's middle colour
    np.testing.assert_array_equal(colors[1], expected_colors(np.array([0.5]), Normalize(0, 1))[0])


def test_loss_colors_fall_back_to_linear_and_to_grey():
    values = np.array([-1.0, 0.0, 3.0])
    np.testing.assert_array_equal(loss_colors(values), expected_colors(values, Normalize(-1, 3)))
    np.testing.assert_array_equal(loss_colors(values, log=False), loss_colors(values))
    np.testing.assert_array_equal(loss_colors(np.full(4, 2.0)), np.tile(MISSING_COLOR, (4, 1)))
