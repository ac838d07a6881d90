"""``plot_curvature``: the convexity map of Li et al. (2018, *Visualizing the Loss Landscape of
Neural Nets*, end of sec. 6), ``|lambda_min / lambda_max|`` over the plane, blue where the loss is
locally convex and yellow where strong negative curvature exists, with the loss contours over it.

Object-oriented matplotlib: it draws into the caller's axes (or a new ``Figure`` with an Agg
canvas) and returns ``(fig, ax)``; no pyplot state. Matplotlib is imported when first drawing, so
importing the package stays light.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._io import atomic_path
from ..errors import IncompatibleFileError
from ..results import CurvatureGrid, LossGrid
from ..results.curvature import eigenvalue_ratio, shown
from .style import Style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["RATIO_CMAP", "RATIO_SCALES", "plot_curvature", "ratio_scale", "save_curvature_png"]

#: Dark blue (0: convex) to yellow (large negative curvature), as in Li et al.'s maps; also
#: readable with colour-vision deficiencies.
RATIO_CMAP = "cividis"
#: With ``vmax=None`` the colour scale ends at the smallest of these that is at least the 99th
#: percentile of the ratio: a map that is convex everywhere stays blue on a scale that still
#: shows its variations, and the colour bar says which scale it is.
RATIO_SCALES = (0.1, 0.2, 0.5, 1.0)


def plot_curvature(
    curvature_grid: CurvatureGrid,
    *,
    loss_grid: LossGrid | None = None,
    ax: Axes | None = None,
    paths: Sequence[np.ndarray] = (),
    vmax: float | None = None,
    contour_levels: int = 15,
    text_size: float = 9.0,
    title: str | None = "Convexity: |λmin / λmax| of the Hessian",
) -> tuple[Figure, Axes]:
    """Draw the ratio map ``|lambda_min / lambda_max|`` of ``curvature_grid``.

    Args:
        curvature_grid: from :func:`curvature_grid`.
        loss_grid: a :class:`LossGrid` of the same plane: its log-loss contours are drawn over the
            map, and its minimum marked.
        ax: the axes to draw into; default a new 6 x 5 inch figure.
        paths: optimizer paths (T, 2) in plane coordinates (``Plane.path_2d``) to draw over the
            map, in the animation's path colours, each ending at a dot.
        vmax: the ratio drawn in full yellow (larger ratios too); 0 is dark blue. Default: the
            smallest of :data:`RATIO_SCALES` covering 99% of the points.
        contour_levels: number of loss contour levels.
        text_size: font size of the labels, in points.
        title: the axes title (None: none).

    Returns:
        ``(fig, ax)``. Points where the ratio is undefined (``lambda_max`` zero or not finite) are
        left blank.
    """
    if not isinstance(curvature_grid, CurvatureGrid):
        raise TypeError(
            f"Expected curvature_grid to be a CurvatureGrid but got {type(curvature_grid).__name__}"
        )
    if loss_grid is not None and not isinstance(loss_grid, LossGrid):
        raise TypeError(f"Expected loss_grid to be a LossGrid but got {type(loss_grid).__name__}")
    ours = curvature_grid.plane_fingerprint
    theirs = None if loss_grid is None else loss_grid.plane_fingerprint
    if None not in (ours, theirs) and ours != theirs:
        raise IncompatibleFileError(
            f"The loss grid and the curvature grid lie on different planes (fingerprints "
            f"{theirs} and {ours}): pass the loss grid of the curvature grid's plane"
        )
    if ax is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.0, 5.0), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure  # type: ignore[assignment]
    grid = curvature_grid
    ratio = np.ma.masked_invalid(
        eigenvalue_ratio(shown(grid.lambda_max, grid.converged), grid.lambda_min)
    )
    if vmax is None:
        vmax = ratio_scale(ratio.compressed())
    mesh = ax.pcolormesh(
        grid.xs,
        grid.ys,
        ratio,
        cmap=RATIO_CMAP,
        vmin=0.0,
        vmax=vmax,
        shading="nearest",
        rasterized=True,
    )
    bar = fig.colorbar(mesh, ax=ax, fraction=0.05, pad=0.02, extend="max")
    bar.set_label("|λmin / λmax|   (0: locally convex)", fontsize=text_size)
    bar.ax.tick_params(labelsize=text_size - 1)
    if loss_grid is not None:
        _draw_loss(ax, loss_grid, contour_levels, text_size)
    colors = Style().path_colors
    for k, path in enumerate(paths):
        xy = np.asarray(path, dtype=float)
        color = colors[k % len(colors)]
        ax.plot(xy[:, 0], xy[:, 1], color=color, linewidth=1.8)
        ax.plot(*xy[-1], marker="o", color=color, markeredgecolor="k", linestyle="none")
    ax.set_xlim(grid.xs[0], grid.xs[-1])
    ax.set_ylim(grid.ys[0], grid.ys[-1])
    ax.set_xlabel("direction 0", fontsize=text_size + 1)
    ax.set_ylabel("direction 1", fontsize=text_size + 1)
    ax.tick_params(labelsize=text_size - 1)
    if title:
        ax.set_title(title, fontsize=text_size + 2)
    if grid.converged is not None and not grid.converged.all():
        ax.text(
            0.01,
            0.01,
            f"{int((~grid.converged).sum())} points left blank: the eigensolver did not converge",
            transform=ax.transAxes,
            fontsize=text_size - 1,
            bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"},
        )
    return fig, ax  # type: ignore[return-value]


def ratio_scale(ratio: np.ndarray) -> float:
    """The end of the colour scale for the finite ratios ``ratio`` (see :data:`RATIO_SCALES`)."""
    if ratio.size == 0:
        return RATIO_SCALES[-1]
    high = float(np.percentile(ratio, 99))
    return next((s for s in RATIO_SCALES if s >= high), RATIO_SCALES[-1])


def _draw_loss(ax: Axes, loss_grid: LossGrid, levels: int, text_size: float) -> None:
    log_loss = np.ma.masked_invalid(np.log(np.where(loss_grid.loss > 0, loss_grid.loss, np.nan)))
    if log_loss.count() >= 2 and np.ptp(log_loss.compressed()) > 0:
        ax.contour(
            loss_grid.xs,
            loss_grid.ys,
            log_loss,
            levels=levels,
            colors="white",
            linestyles="solid",
            linewidths=0.7,
            alpha=0.85,
        )
    if np.isfinite(loss_grid.loss_min):
        from .landscape import draw_grid_minimum, loss_text

        text = loss_text(loss_grid.loss_min)
        label = f"loss minimum {text} (contours: log loss)"
        draw_grid_minimum(ax, loss_grid, size=13, color="white", label=label)
        ax.legend(loc="upper right", fontsize=text_size - 1, framealpha=0.85)


def save_curvature_png(
    path: str | os.PathLike,
    curvature_grid: CurvatureGrid,
    *,
    loss_grid: LossGrid | None = None,
    axis_labels: tuple[str, str] | None = None,
    **options: Any,
) -> Path:
    """Draw :func:`plot_curvature` into a new figure and write it to ``path`` as PNG,
    atomically; ``axis_labels`` name the plane's directions."""
    fig, ax = plot_curvature(curvature_grid, loss_grid=loss_grid, **options)
    if axis_labels is not None:
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
    fig.tight_layout()
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fig.savefig(fh, format="png")
    return Path(path)
