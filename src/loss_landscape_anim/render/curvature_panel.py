"""The curvature panel of the animation's side column: the largest and smallest Hessian eigenvalue
along each path, growing with the frames, and for plain SGD the edge of stability ``2 / eta``
(Cohen et al. 2021), to which the largest eigenvalue of full-batch gradient descent tends to climb.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..results import PathCurvature
from ..results.curvature import shown
from .style import Curve, Drawn, PathView, Style

__all__ = ["THRESHOLD_COLOR", "as_curvature_map", "draw_curvature_panel"]

#: Colour of the 2/eta line.
THRESHOLD_COLOR = "#555555"
#: Room above the highest value for the legend, as a share of the values' range.
LEGEND_HEADROOM = 0.55


def as_curvature_map(
    curvature: PathCurvature | Mapping[str, PathCurvature] | None, names: list[str]
) -> dict[str, PathCurvature]:
    """``curvature`` as name -> PathCurvature for the paths ``names`` (a single one belongs to the
    first path)."""
    if curvature is None:
        return {}
    if isinstance(curvature, PathCurvature):
        return {names[0]: curvature}
    if not isinstance(curvature, Mapping) or not all(
        isinstance(v, PathCurvature) for v in curvature.values()
    ):
        raise TypeError(
            "Expected curvature to be a PathCurvature or a mapping name -> PathCurvature but got "
            f"{type(curvature).__name__}"
        )
    unknown = sorted(set(curvature) - set(names))
    if unknown:
        raise ValueError(f"curvature names paths that are not animated: {unknown}; paths: {names}")
    return dict(curvature)


def draw_curvature_panel(
    ax: Any, paths: list[PathView], curvature: Mapping[str, PathCurvature], style: Style
) -> Drawn:
    """The static parts of the panel in ``ax`` (axes, a dashed line at ``2 / eta`` for each SGD
    path, the legend), and what the figure animates: λmax (solid) and λmin (dotted) of each
    path, growing with the frames; the whole spectrum when the curvature has densities
    (:func:`~.spectrum.draw_spectrum_panel`)."""
    if any(c.has_density for c in curvature.values()):
        from .spectrum import draw_spectrum_panel

        return draw_spectrum_panel(ax, paths, curvature, style)
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    steps_max = max(int(p.steps[-1]) for p in paths) or 1
    ax.set_xlim(0, steps_max)
    ax.set_ylabel("Hessian λ", fontsize=style.text_size)
    ax.tick_params(labelsize=style.text_size - 1)
    ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.grid(alpha=0.3)
    values: list[np.ndarray] = [np.zeros(1)]
    thresholds: list[float] = []
    curves: list[Curve] = []
    for p in paths:
        c = curvature.get(p.name)
        if c is None:
            continue
        top, bottom = shown(c.lambda_max, c.converged), shown(c.lambda_min, c.converged)
        curves.append(Curve(np.asarray(c.steps), top, p.color, "-"))
        curves.append(Curve(np.asarray(c.steps), bottom, p.color, ":", 1.4))
        values += [top, bottom]
        threshold = c.stability_threshold
        if threshold is not None and threshold not in thresholds:
            thresholds.append(threshold)
            ax.axhline(threshold, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.0)
    finite = np.concatenate([*values, np.asarray(thresholds)])
    finite = finite[np.isfinite(finite)]
    low, high = float(finite.min()), float(finite.max())
    span = high - low or 1.0
    # Headroom above the curves for the legend, so it never hides them.
    ax.set_ylim(low - 0.08 * span, high + LEGEND_HEADROOM * span)
    handles = [
        Line2D([], [], color="k", linestyle="-", linewidth=1.5, label="λmax"),
        Line2D([], [], color="k", linestyle=":", linewidth=1.4, label="λmin"),
    ]
    if thresholds:
        label = f"2/η = {thresholds[0]:.3g}" if len(thresholds) == 1 else "2/η"
        handles.append(Line2D([], [], color=THRESHOLD_COLOR, linestyle="--", label=label))
    ax.legend(
        handles=handles,
        loc="upper right",
        fontsize=style.text_size - 2,
        ncol=len(handles),
        handlelength=1.6,
        columnspacing=0.8,
        borderpad=0.2,
        framealpha=0.8,
    )
    return Drawn(curves)
