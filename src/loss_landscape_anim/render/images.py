"""Pictures as arrays, for loggers and mesh files that take pixels or colours rather than files:
a figure rasterised, the landscape figure as an image, and loss values mapped to colours."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..results import LossGrid, Plane, Trajectory

__all__ = ["figure_image", "landscape_image", "loss_colors"]

#: The colour of points whose loss is not finite (grey).
MISSING_COLOR = (128, 128, 128)


def figure_image(fig: Any) -> np.ndarray:
    """The matplotlib figure ``fig`` drawn with Agg: (H, W, 3) uint8 RGB."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(canvas.buffer_rgba())[..., :3]


def landscape_image(
    grid: LossGrid,
    *,
    plane: Plane | None = None,
    trajectory: Trajectory | None = None,
    view: str = "contour",
    **options: Any,
) -> np.ndarray:
    """:func:`~loss_landscape_anim.plot_landscape` of ``grid`` (with the path of ``plane`` or
    ``trajectory``) as an (H, W, 3) uint8 image; ``options`` go to ``plot_landscape``."""
    from .landscape_plot import plot_landscape

    fig, _ = plot_landscape(grid, plane=plane, trajectory=trajectory, view=view, **options)
    return figure_image(fig)


def loss_colors(loss: Any, *, log: bool = True, cmap: str = "viridis") -> np.ndarray:
    """RGB colours (N, 3) uint8 of the loss values ``loss`` (any shape, flattened), on the colour
    scale of the animation and :func:`plot_landscape` (log when every finite value is positive
    and ``log``); grey where a value is not finite or all values are equal."""
    import matplotlib

    from .loss_scale import LossScale

    values = np.asarray(loss, dtype=float).reshape(-1)
    colors = np.empty((values.size, 3), dtype=np.uint8)
    colors[:] = MISSING_COLOR
    scale = LossScale.of(values, 2, log)
    finite = np.isfinite(values)
    if scale is not None:
        rgba = matplotlib.colormaps[cmap](scale.norm(values[finite]))
        colors[finite] = np.round(255 * np.asarray(rgba)[:, :3]).astype(np.uint8)
    return colors
