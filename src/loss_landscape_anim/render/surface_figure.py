"""The animation's 3D view: the loss surface, each path drawn on it at the loss of the plane under
it, the current point, and a slow camera turn.

Built on :class:`LandscapeFigure` (the same side panels, info rows and frame interface); only the
main axes differ. With a camera turn the surface changes every frame, so it is redrawn (no
blitting); the surface is drawn from at most ``max_cells`` x ``max_cells`` cells to keep that fast.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.patheffects import Normal, Stroke

from ..results import DecisionRegions, LossGrid, PathCurvature, Plane
from .figure import _TEXT_COLOR, LandscapeFigure
from .loss_scale import LossScale
from .style import PathView, Style
from .surface import draw_surface, path_heights

__all__ = ["SurfaceFigure"]

#: Viewing angles of the 3D view, degrees: elevation, and azimuth at the first frame.
ELEVATION = 32.0
AZIMUTH = -60.0
#: Azimuth the camera turns through over the whole animation, degrees (0: fixed camera).
TURN = 40.0
#: Cells per axis of the drawn surface, at most (the grid is subsampled beyond that).
MAX_CELLS = 50


class SurfaceFigure(LandscapeFigure):
    """Draws frame ``t`` of the 3D view into an RGBA array (H, W, 4)."""

    def __init__(
        self,
        paths: list[PathView],
        grid: LossGrid,
        plane: Plane,
        style: Style,
        decision_regions: DecisionRegions | None = None,
        curvature: dict[str, PathCurvature] | None = None,
        *,
        turn: float = TURN,
        max_cells: int = MAX_CELLS,
    ):
        self.turn = float(turn)
        self.max_cells = int(max_cells)
        self.n_rows = max(len(p.steps) for p in paths)
        super().__init__(paths, grid, plane, style, decision_regions, curvature)

    def _layout(self) -> None:
        super()._layout()
        spec = self.ax.get_subplotspec()
        self.ax.remove()
        self.ax = self.fig.add_subplot(spec, projection="3d")
        box = self.ax.get_position()  # the 3D box needs no colour bar: its height reads in losses
        self.ax.set_position((box.x0 - 0.04, box.y0 - 0.04, box.width + 0.1, box.height + 0.08))

    def _draw_landscape(self, plane: Plane) -> None:
        ax: Any = self.ax  # a 3D axes
        grid, style = self.grid, self.style
        ax.view_init(elev=ELEVATION, azim=AZIMUTH)
        self.scale = LossScale.of(grid.loss, style.contour_levels)
        if self.scale is None:
            ax.text2D(
                0.5,
                0.5,
                "no finite loss values on this plane",
                transform=ax.transAxes,
                ha="center",
                fontsize=style.text_size,
                color=_TEXT_COLOR,
            )
        else:
            draw_surface(
                self.fig,
                ax,
                _subsampled(grid, self.max_cells),
                self.scale,
                style.cmap,
                text_size=style.text_size,
                colorbar=False,
            )
            ax.set_xlim(grid.xs[0], grid.xs[-1])
            ax.set_ylim(grid.ys[0], grid.ys[-1])
            if np.isfinite(grid.loss_min):
                z = self.scale.height(grid.loss_min)
                ax.plot(
                    [grid.argmin[0]],
                    [grid.argmin[1]],
                    [z],
                    marker="*",
                    markersize=style.point_size + 5,
                    color=style.minimum_color,
                    markeredgecolor="k",
                    linestyle="none",
                    label=f"grid minimum, loss {grid.loss_min:.3g}",
                    zorder=20,
                )
                ax.legend(loc="upper left", fontsize=style.text_size - 1, framealpha=0.8)
        xlabel, ylabel = plane.axis_labels()
        ax.set_xlabel(xlabel, fontsize=style.text_size)
        ax.set_ylabel(ylabel, fontsize=style.text_size)
        if self.turn:
            # The camera turns: the whole 3D axes is redrawn every frame (the side panels are
            # not), so it is left out of the static background.
            ax.set_animated(True)

    def _make_path_artists(self) -> None:
        super()._make_path_artists()  # the 2D artists, replaced below by 3D ones
        style = self.style
        for artist in [*self.lines, *self.points]:
            self.moving.remove(artist)
            artist.remove()
        self.lines, self.points, self.heights = [], [], []
        for p in self.paths:
            z = (
                path_heights(self.grid, p.xy, self.scale)
                if self.scale is not None
                else np.zeros(len(p.xy))
            )
            (line,) = self.ax.plot(
                [], [], [], color=p.color, linewidth=style.path_width, animated=True, zorder=30
            )
            line.set_path_effects(
                [Stroke(linewidth=style.path_width + 1.6, foreground="k"), Normal()]
            )
            (point,) = self.ax.plot(
                [],
                [],
                [],
                marker="o",
                markersize=style.point_size,
                color=p.color,
                markeredgecolor="k",
                linestyle="none",
                animated=True,
                zorder=31,
            )
            self.lines.append(line)
            self.points.append(point)
            self.heights.append(z)
            self.moving[:0] = [line, point]
        if self.turn:
            self.moving.insert(0, self.ax)

    def frame(self, t: int) -> np.ndarray:
        """Draw frame ``t``: turn the camera (redrawing the surface), then the moving parts."""
        ax: Any = self.ax  # a 3D axes, with 3D lines
        if self.turn and self.n_rows > 1:
            azimuth = AZIMUTH + self.turn * min(t, self.n_rows - 1) / (self.n_rows - 1)
            ax.view_init(elev=ELEVATION, azim=azimuth)
        lines: list[Any] = self.lines
        points: list[Any] = self.points
        for p, line, point, z in zip(self.paths, lines, points, self.heights, strict=True):
            k = min(t, len(p.steps) - 1)
            line.set_data_3d(p.xy[: k + 1, 0], p.xy[: k + 1, 1], z[: k + 1])
            point.set_data_3d(p.xy[k : k + 1, 0], p.xy[k : k + 1, 1], z[k : k + 1])
        return super().frame(t)


def _subsampled(grid: LossGrid, max_cells: int) -> LossGrid:
    """``grid`` with at most ``max_cells + 1`` points per axis (evenly picked, ends kept)."""
    n = grid.loss.shape[0]
    if n <= max_cells + 1:
        return grid
    rows = np.unique(np.round(np.linspace(0, n - 1, max_cells + 1)).astype(int))
    cols = np.unique(np.round(np.linspace(0, grid.loss.shape[1] - 1, max_cells + 1)).astype(int))
    return LossGrid.from_values(grid.xs[cols], grid.ys[rows], grid.loss[np.ix_(rows, cols)])
