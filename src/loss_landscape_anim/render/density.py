"""``plot_density``: the eigenvalue spectral density of the Hessian on a log-density axis, as in
Ghorbani et al. (2019) and PyHessian (Yao et al. 2020): the bulk near zero and the few outliers
that set the sharpness, readable at once. Object-oriented matplotlib only, never pyplot's
state; matplotlib is imported when drawing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..results import HessianDensity
from .style import Style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DENSITY_FLOOR", "density_grid", "plot_density"]

#: The log-density axis shows densities down to this share of the highest peak: lower values
#: are the Gaussian tails of the smoothing, not information.
DENSITY_FLOOR = 1e-6
#: The axis names of each operator.
_NAMES = {"hessian": "Hessian", "ggn": "Gauss-Newton", "fisher": "empirical Fisher"}


def plot_density(
    density: HessianDensity | Mapping[str, HessianDensity],
    *,
    ax: Any = None,
    sigma: float | None = None,
    n_grid: int = 1000,
    log: bool = True,
    colors: tuple[str, ...] | None = None,
    title: str | None = None,
) -> tuple[Figure, Any]:
    """Draw the smoothed spectral density (or several, labelled, in one axes).

    Args:
        density: a :class:`HessianDensity`, or a mapping label -> density to overlay.
        ax: the axes to draw into; None makes a new figure (6.4 x 4 in).
        sigma: the Gaussian smoothing width in eigenvalue units (default: 1% of the joint
            extent of the spectra).
        n_grid: eigenvalues at which the density is drawn.
        log: a log-density axis, floored at :data:`DENSITY_FLOOR` times the peak.
        colors: line colours, one per density (default: the animation's path colours).
        title: the axes title (default: names the operator).

    Returns:
        ``(fig, ax)``.
    """
    import matplotlib
    from matplotlib.figure import Figure

    densities = _as_mapping(density)
    grid, sigma = density_grid(list(densities.values()), sigma, n_grid)
    colors = colors or ("#1f77b4", *Style().path_colors)
    with matplotlib.rc_context({"font.size": 9, "axes.labelsize": 9}):
        if ax is None:
            fig = Figure(figsize=(6.4, 4.0), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.get_figure()
        peak = 0.0
        for k, (label, d) in enumerate(densities.items()):
            values = d.density(grid, sigma)
            peak = max(peak, float(values.max()))
            color = colors[k % len(colors)]
            ax.plot(grid, values, color=color, linewidth=1.4, label=label or None)
        if log:
            ax.set_yscale("log")
            ax.set_ylim(peak * DENSITY_FLOOR, peak * 3)
        ax.set_xlim(grid[0], grid[-1])
        first = next(iter(densities.values()))
        name = _NAMES.get(first.operator, first.operator)
        ax.set_xlabel(f"eigenvalue of the {name}")
        ax.set_ylabel(f"density (smoothed, σ = {sigma:.2g})")
        ax.grid(alpha=0.3, which="major")
        if any(densities):
            ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
        ax.set_title(
            title if title is not None else f"{name} eigenvalue density (SLQ)", fontsize=10
        )
    return fig, ax


def density_grid(
    densities: list[HessianDensity], sigma: float | None, n_grid: int
) -> tuple[np.ndarray, float]:
    """The eigenvalues (n_grid,) covering every density's support and 5 sigma beyond, and
    sigma (default: 1% of the joint extent)."""
    if not densities or not all(isinstance(d, HessianDensity) for d in densities):
        raise TypeError(
            "Expected density to be a HessianDensity or a mapping label -> HessianDensity but "
            f"got {[type(d).__name__ for d in densities]}"
        )
    if isinstance(n_grid, bool) or not isinstance(n_grid, int) or n_grid < 2:
        raise ValueError(f"Expected n_grid to be an integer >= 2 but got {n_grid!r}")
    low = min(d.support[0] for d in densities)
    high = max(d.support[1] for d in densities)
    if sigma is None:
        extent = high - low or max(abs(low), abs(high)) or 1.0
        sigma = 0.01 * extent
    elif not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"Expected sigma to be a finite number > 0 but got {sigma!r}")
    return np.linspace(low - 5 * sigma, high + 5 * sigma, n_grid), float(sigma)


def _as_mapping(
    density: HessianDensity | Mapping[str, HessianDensity],
) -> dict[str, HessianDensity]:
    if isinstance(density, HessianDensity):
        return {"": density}
    if isinstance(density, Mapping):
        return dict(density)
    raise TypeError(
        "Expected density to be a HessianDensity or a mapping label -> HessianDensity but got "
        f"{type(density).__name__}"
    )
