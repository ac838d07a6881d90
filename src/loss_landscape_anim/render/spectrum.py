"""``plot_path_spectrum``: how the whole Hessian spectrum evolves while training, as a heat strip
(optimizer step across, eigenvalue up, colour the log of the smoothed spectral density at that
step), with the largest eigenvalue over it and, for plain SGD, the edge of stability ``2 / eta``
(Cohen et al. 2021). Object-oriented matplotlib; matplotlib is imported when drawing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..results import PathCurvature
from ..results.curvature import shown as shown_values
from .density import DENSITY_FLOOR, density_grid
from .style import Curve, Drawn, PathView, Style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "SPECTRUM_CMAP",
    "THRESHOLD_COLOR",
    "draw_spectrum_panel",
    "plot_path_spectrum",
    "spectrum_image",
]

#: Dark (no eigenvalues) to bright (many): the bulk glows, the outliers show as thin traces.
SPECTRUM_CMAP = "magma"
#: The 2/eta line and the lambda_max curve over the strip.
THRESHOLD_COLOR = "#4dd2ff"
LAMBDA_COLOR = "white"


def spectrum_image(
    curvature: PathCurvature,
    sigma: float | None = None,
    n_grid: int = 300,
    top: float | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The eigenvalues (G,) of the strip, ``log10`` of the smoothed density (G, T') of each row
    (floored at :data:`DENSITY_FLOOR` times the peak), and sigma (default: 1% of the joint
    extent of every row's spectrum). The eigenvalues reach up to ``top`` at least (the 2/eta
    line, so that the strip fills the axes below it)."""
    if not isinstance(curvature, PathCurvature):
        raise TypeError(
            f"Expected curvature to be a PathCurvature but got {type(curvature).__name__}"
        )
    if not curvature.has_density:
        raise ValueError(
            "Expected a PathCurvature with densities: compute it with "
            "curvature_along_path(..., density=True)"
        )
    rows = [curvature.density(i) for i in range(len(curvature))]
    grid, sigma = density_grid(rows, sigma, n_grid)
    if top is not None and top > grid[-1]:
        grid = np.linspace(grid[0], top, n_grid)
    values = np.stack([d.density(grid, sigma) for d in rows], axis=1)
    floor = values.max() * DENSITY_FLOOR
    return grid, np.log10(np.maximum(values, floor)), sigma


def plot_path_spectrum(
    curvature: PathCurvature,
    *,
    ax: Any = None,
    sigma: float | None = None,
    n_grid: int = 300,
    cmap: str = SPECTRUM_CMAP,
    colorbar: bool = True,
    title: str | None = "Hessian spectrum along the path",
) -> tuple[Figure, Any]:
    """Draw the spectral density of each evaluated row of a path as a heat strip, with
    ``lambda_max`` and, for plain SGD, the ``2 / eta`` line.

    Args:
        curvature: from ``curvature_along_path(..., density=True)``.
        ax: the axes to draw into; None makes a new figure (6.4 x 4 in).
        sigma: Gaussian smoothing width in eigenvalue units, the same for every row (default:
            1% of the joint extent).
        n_grid: eigenvalues resolved along the vertical axis.
        cmap: the colour map of ``log10`` density.
        colorbar: draw a colour bar.
        title: the axes title (None: none).

    Returns:
        ``(fig, ax)``.
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patheffects import Normal, Stroke

    if not isinstance(curvature, PathCurvature):
        raise TypeError(
            f"Expected curvature to be a PathCurvature but got {type(curvature).__name__}"
        )
    threshold = curvature.stability_threshold
    top = None if threshold is None else threshold * 1.05
    grid, image, sigma = spectrum_image(curvature, sigma, n_grid, top)
    steps = np.asarray(curvature.steps, dtype=float)
    with matplotlib.rc_context({"font.size": 9, "axes.labelsize": 9}):
        if ax is None:
            fig = Figure(figsize=(6.4, 4.0), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.get_figure()
        mesh = ax.pcolormesh(steps, grid, image, cmap=cmap, shading="nearest", rasterized=True)
        (line,) = ax.plot(
            steps, curvature.lambda_max, color=LAMBDA_COLOR, linewidth=1.0, label="λmax"
        )
        line.set_path_effects([Stroke(linewidth=2.2, foreground="#333333"), Normal()])
        if threshold is not None:
            ax.axhline(
                threshold,
                color=THRESHOLD_COLOR,
                linestyle="--",
                linewidth=1.0,
                label=f"2/η = {threshold:.3g}",
            )
        if colorbar:
            bar = fig.colorbar(mesh, ax=ax, fraction=0.05, pad=0.02)
            bar.set_label(f"log10 density (σ = {sigma:.2g})")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("Hessian eigenvalue")
        ax.legend(loc="upper left", fontsize=8, framealpha=0.85)
        if title:
            ax.set_title(title, fontsize=10)
    return fig, ax


def draw_spectrum_panel(
    ax: Any, paths: list[PathView], curvature: Mapping[str, PathCurvature], style: Style
) -> Drawn:
    """The animation's curvature panel as a spectrum view: the heat strip of the first path with
    densities (static, revealed up to the current step by a moving mask), each path's
    ``lambda_max`` in its colour growing with the frames, and ``2 / eta`` for plain SGD (labelled
    at its right end: a legend would hide the strip). Returns what the figure animates."""
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    shown = next(c for c in curvature.values() if c.has_density)
    thresholds: list[float] = []
    for c in curvature.values():
        if c.stability_threshold is not None and c.stability_threshold not in thresholds:
            thresholds.append(c.stability_threshold)
    top = max(thresholds) * 1.05 if thresholds else None
    grid, image, _ = spectrum_image(shown, top=top)
    steps = np.asarray(shown.steps, dtype=float)
    steps_max = max(int(p.steps[-1]) for p in paths) or 1
    ax.pcolormesh(steps, grid, image, cmap=SPECTRUM_CMAP, shading="nearest", rasterized=True)
    curves = [
        Curve(
            np.asarray(path_curve.steps),
            shown_values(path_curve.lambda_max, path_curve.converged),
            p.color,
            "-",
            1.3,
        )
        for p in paths
        if (path_curve := curvature.get(p.name)) is not None
    ]
    for threshold in thresholds:
        ax.axhline(threshold, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.0)
        # A label at the line's right end instead of a legend, which would hide the strip.
        ax.text(
            0.99,
            threshold,
            "2/η",
            transform=ax.get_yaxis_transform(),
            ha="right",
            va="bottom",
            color=THRESHOLD_COLOR,
            fontsize=style.text_size - 2,
        )
    low, high = float(grid[0]), float(grid[-1])
    ax.set_xlim(0, steps_max)
    ax.set_ylim(low, high)
    mask = Rectangle(
        (0, low),
        steps_max,
        high - low,
        facecolor=style.background,
        edgecolor="none",
        animated=True,
    )
    ax.add_patch(mask)

    def reveal(step: float) -> None:
        mask.set_x(step)
        mask.set_width(max(steps_max - step, 0))

    ax.set_ylabel("Hessian λ", fontsize=style.text_size)
    ax.tick_params(labelsize=style.text_size - 1)
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    return Drawn(curves, moving=[mask], updates=[reveal])
