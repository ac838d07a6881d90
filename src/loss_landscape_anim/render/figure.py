"""The matplotlib figure of an animation: static parts drawn once, moving parts blitted per frame.

Object-oriented matplotlib only (``Figure`` + Agg canvas): no pyplot state, no global figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patheffects import Normal, Stroke
from matplotlib.ticker import MaxNLocator

from ..results import DecisionRegions, LossGrid, PathCurvature, Plane
from .curvature_panel import draw_curvature_panel
from .landscape import TEXT_COLOR as _TEXT_COLOR
from .landscape import draw_landscape, keep_x_label_inside, keep_y_label_inside, loss_text
from .style import Curve, PathView, Style
from .text_rows import TextRows


class LandscapeFigure:
    """Draws frame ``t`` of the animation into an RGBA array (H, W, 4)."""

    def __init__(
        self,
        paths: list[PathView],
        grid: LossGrid,
        plane: Plane,
        style: Style,
        decision_regions: DecisionRegions | None = None,
        curvature: Mapping[str, PathCurvature] | None = None,
    ):
        self.paths, self.grid, self.style = paths, grid, style
        self.decision = decision_regions
        self.curvature = dict(curvature or {})
        self.fig = Figure(figsize=style.figsize, dpi=style.dpi, facecolor=style.background)
        self.canvas = FigureCanvasAgg(self.fig)
        self.moving: list[Any] = []
        self.updates: list[Any] = []  # callables of the step, run before each frame is drawn
        self._layout()
        self._draw_landscape(plane)
        self._make_path_artists()
        keep_x_label_inside(self.ax, self._outer)
        keep_y_label_inside(self.ax, self._outer)
        if style.panels:
            self._draw_panels()
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        self._background_rgb = self._rgb()

    def _draw_landscape(self, plane: Plane) -> None:
        """The loss grid in the main axes (filled contours here; a 3D surface in a subclass)."""
        draw_landscape(self.ax, self.grid, plane, self.style)

    @property
    def size(self) -> tuple[int, int]:
        w, h = self.canvas.get_width_height()
        return int(w), int(h)

    # -- layout and static parts ---------------------------------------------------------------

    def _layout(self) -> None:
        style, fig = self.style, self.fig
        if style.title:
            fig.suptitle(style.title, fontsize=style.text_size + 3, color=_TEXT_COLOR)
        if not style.panels:
            self._outer = fig.add_gridspec(1, 1)  # the figure's default margins
            self.ax = fig.add_subplot(self._outer[0, 0])
            return
        rows = ["info", "loss", "accuracy"] + (["decision"] if self.decision is not None else [])
        ratios = [0.75, 1.0, 0.8] if self.decision is None else [1.0, 0.85, 0.7, 1.3]
        if self.curvature:  # below the accuracy panel, as tall as the loss panel
            rows.insert(3, "curvature")
            ratios = [0.8, 1.0, 0.8, 1.0] if self.decision is None else [1.25, 0.8, 0.65, 0.8, 1.0]
        outer = fig.add_gridspec(
            1,
            2,
            width_ratios=(1.55, 1.0),
            left=0.075,
            right=0.98,
            bottom=0.09,
            top=0.9,
            wspace=0.45,
        )
        self.ax = fig.add_subplot(outer[0, 0])
        self._outer = outer
        hspace = 0.6 if self.decision is None else 0.8
        if self.curvature:  # room for the "step" label between it and the panel below
            hspace += 0.3
        side = outer[0, 1].subgridspec(len(rows), 1, height_ratios=ratios, hspace=hspace)
        self.side = {name: fig.add_subplot(side[k, 0]) for k, name in enumerate(rows)}
        self.side["info"].set_axis_off()

    def _make_path_artists(self) -> None:
        style = self.style
        self.lines, self.points = [], []
        for p in self.paths:
            (line,) = self.ax.plot(
                [],
                [],
                color=p.color,
                linewidth=style.path_width,
                solid_capstyle="round",
                animated=True,
            )
            (point,) = self.ax.plot(
                [],
                [],
                marker="o",
                markersize=style.point_size,
                color=p.color,
                markeredgecolor="k",
                linestyle="none",
                animated=True,
            )
            line.set_path_effects(
                [Stroke(linewidth=style.path_width + 1.6, foreground="k"), Normal()]
            )
            self.lines.append(line)
            self.points.append(point)
            self.moving += [line, point]
        if not style.panels:
            text = getattr(self.ax, "text2D", self.ax.text)  # 2D text on a 3D axes: text2D
            info = text(
                0.02,
                0.98,
                "",
                transform=self.ax.transAxes,
                va="top",
                fontsize=style.text_size,
                color=_TEXT_COLOR,
                family="monospace",
                animated=True,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
            )
            self.info_texts = [info]
            self.info_rows: TextRows | None = None
            self.moving.append(info)

    def _draw_panels(self) -> None:
        style, side = self.style, self.side
        steps_max = max(int(p.steps[-1]) for p in self.paths) or 1
        self._make_info_rows(side["info"])
        self.curves: list[tuple[Any, np.ndarray, np.ndarray]] = []
        for name, label in (("loss", "loss"), ("accuracy", "accuracy")):
            ax = side[name]
            ax.set_xlim(0, steps_max)
            ax.set_ylabel(label, fontsize=style.text_size)
            ax.tick_params(labelsize=style.text_size - 1)
            ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
            ax.grid(alpha=0.3)
            for p in self.paths:
                values = p.loss if name == "loss" else p.accuracy
                self._add_curve(ax, Curve(p.steps, values, p.color))
                if name != "loss" or len(self.paths) != 1:
                    continue
                if p.true_loss is not None and p.projected_loss is not None:
                    self._add_curve(ax, Curve(p.steps, p.true_loss, "k", "-", 1.0))
                    self._add_curve(ax, Curve(p.steps, p.projected_loss, "k", ":", 1.2))
            self._set_curve_limits(ax, name)
        if self.curvature:
            ax = side["curvature"]
            drawn = draw_curvature_panel(ax, self.paths, self.curvature, style)
            for curve in drawn.curves:
                self._add_curve(ax, curve)
            self.moving += drawn.moving
            self.updates += drawn.updates
        side["curvature" if self.curvature else "accuracy"].set_xlabel(
            "step", fontsize=style.text_size
        )
        if self.decision is not None:
            self._draw_decision_static()

    def _add_curve(self, ax: Any, curve: Curve) -> None:
        """A curve growing with the frames; points with no finite value are left out."""
        values = np.asarray(curve.values, dtype=float)
        finite = np.isfinite(values)
        (line,) = ax.plot(
            [],
            [],
            color=curve.color,
            linestyle=curve.linestyle,
            linewidth=curve.width,
            animated=True,
        )
        self.curves.append((line, np.asarray(curve.steps)[finite], values[finite]))
        self.moving.append(line)

    def _set_curve_limits(self, ax: Any, name: str) -> None:
        values = np.concatenate([v for line, _, v in self.curves if line.axes is ax])
        values = values[np.isfinite(values)]
        if name == "accuracy":
            ax.set_ylim(0, 1.02)
            if not values.size:
                ax.text(
                    0.5,
                    0.5,
                    "no accuracy (not a classifier)",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    fontsize=self.style.text_size - 1,
                )
            return
        if not values.size:
            return
        low, high = float(values.min()), float(values.max())
        if low > 0 and high / low > 10:
            ax.set_yscale("log")
            ax.set_ylim(low / 1.2, high * 1.2)
            return
        # A span that is rounding noise next to the values (one frame, a flat path) would get
        # ticks like "1e-7 + 1.106388": show at least 10% of the values' size instead, and
        # never an offset.
        scale = max(abs(low), abs(high))
        if high - low < 1e-3 * scale or high == low:
            centre, half = (low + high) / 2, 0.05 * scale or 0.5
            low, high = centre - half, centre + half
        pad = 0.05 * (high - low)
        ax.set_ylim(low - pad, high + pad)
        ax.ticklabel_format(axis="y", useOffset=False)

    def _draw_decision_static(self) -> None:
        ax, regions = self.side["decision"], self.decision
        assert regions is not None
        ax.set_title("decision regions", fontsize=self.style.text_size, pad=3)
        ax.set_xticks([])
        ax.set_yticks([])
        self.decision_image = ax.imshow(
            regions.classes[0],
            origin="lower",
            extent=regions.extent,
            cmap="Pastel1",
            vmin=0,
            vmax=max(regions.n_classes - 1, 1),
            interpolation="nearest",
            animated=True,
            aspect="auto",
        )
        self.moving.append(self.decision_image)
        colors = matplotlib.colormaps["Set1"].resampled(max(regions.n_classes, 2))
        for label in range(regions.n_classes):
            at = regions.labels == label
            # One marker line per class: markers are blitted much faster than a scatter collection.
            (points,) = ax.plot(
                regions.points[at, 0],
                regions.points[at, 1],
                linestyle="none",
                marker="o",
                markersize=1.6,
                markeredgewidth=0,
                color=colors(label),
                animated=True,
            )
            self.moving.append(points)

    # -- moving parts ----------------------------------------------------------------------------

    def frame(self, t: int) -> np.ndarray:
        """Draw frame ``t`` (row ``t`` of each path, clipped to its length); returns RGBA (H, W, 4)."""
        self.canvas.restore_region(self.background)
        for p, line, point in zip(self.paths, self.lines, self.points, strict=True):
            k = min(t, len(p.steps) - 1)
            line.set_data(p.xy[: k + 1, 0], p.xy[: k + 1, 1])
            point.set_data(p.xy[k : k + 1, 0], p.xy[k : k + 1, 1])
        if self.info_rows is None:
            self.info_texts[0].set_text("\n".join(self._info_lines(t)))
        step = self.paths[0].steps[min(t, len(self.paths[0].steps) - 1)]
        for line, steps, values in getattr(self, "curves", []):
            k = int(np.searchsorted(steps, step, side="right"))
            line.set_data(steps[:k], values[:k])
        for update in self.updates:
            update(step)
        if self.decision is not None:
            k = int(np.searchsorted(self.decision.rows, t, side="right")) - 1
            self.decision_image.set_data(self.decision.classes[max(k, 0)])
        for artist in self.moving:
            artist.axes.draw_artist(artist) if artist.axes else self.fig.draw_artist(artist)
        self.canvas.blit(self.fig.bbox)
        image = self._rgb()
        if self.info_rows is not None:
            self.info_rows.draw(image, self._info_lines(t))
        return image

    def _make_info_rows(self, ax: Any) -> None:
        """Text rows of the info area, each after a swatch in its curve's colour and line style,
        so the rows double as the legend of the paths and of the loss panel."""
        style = self.style
        swatches: list[tuple[str, str] | None] = [None] + [(p.color, "-") for p in self.paths]
        if len(self.paths) == 1:
            if self.paths[0].true_loss is not None:
                swatches += [("k", "-"), ("k", ":")]
            swatches.append(None)
        height_px = ax.get_position().height * self.fig.get_figheight() * self.fig.dpi
        line_height = min(
            1.0 / len(swatches), 1.5 * style.text_size / 72 * self.fig.dpi / height_px
        )
        anchors = []
        for k, swatch in enumerate(swatches):
            y = 1.0 - (k + 0.5) * line_height
            if swatch is not None:
                ax.plot(
                    [0.0, 0.07],
                    [y, y],
                    color=swatch[0],
                    linestyle=swatch[1],
                    linewidth=2.5,
                    transform=ax.transAxes,
                    solid_capstyle="butt",
                )
            anchors.append((0.1 if swatch else 0.0, y))
        self.info_rows = TextRows(self.fig, ax, anchors, style.text_size, _TEXT_COLOR)

    def _info_lines(self, t: int) -> list[str]:
        """The text of each info row at frame ``t``."""
        rows = []
        for p in self.paths:
            k = min(t, len(p.steps) - 1)
            acc = f"{100 * p.accuracy[k]:5.1f}%" if np.isfinite(p.accuracy[k]) else "   -  "
            if len(self.paths) > 1:
                rows.append(f"{p.name:<8.8} {p.loss[k]:7.4f} {acc} {p.off_plane[k]:7.3g}")
            else:
                rows.append(f"batch loss {loss_text(p.loss[k])}   acc {acc.strip()}")
        head = self.paths[0]
        k = min(t, len(head.steps) - 1)
        if len(self.paths) > 1:
            return [f"step {int(head.steps[k]):<4d} loss     acc  off-plane", *rows]
        lines = [f"step {int(head.steps[k])}", *rows]
        if head.true_loss is not None and head.projected_loss is not None:
            lines += [
                f"true loss  {loss_text(head.true_loss[k])}",
                f"on plane   {loss_text(head.projected_loss[k])}",
            ]
        return [*lines, f"off-plane distance {head.off_plane[k]:.3g}"]

    def _rgb(self) -> np.ndarray:
        """The canvas as an RGBA array (H, W, 4), copied."""
        return np.array(self.canvas.buffer_rgba())

    def palette_source(self) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
        """(background RGBA, last frame RGBA, colours of the moving artists), to fit a palette."""
        last = self.frame(max(len(p.steps) for p in self.paths) - 1)
        colors = [p.color for p in self.paths] + ["k", _TEXT_COLOR, "white"]
        rgb = [tuple(round(255 * c) for c in to_rgb(col)) for col in colors]
        return self._background_rgb, last, rgb  # type: ignore[return-value]
