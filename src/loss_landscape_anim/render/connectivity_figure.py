"""The figure of a connectivity animation: the curve bending into the low-loss valley while it
trains. Static parts (contours, the straight line, the ends, panel axes) are drawn once; each frame
restores that background and draws the moving parts (the curve and its bends, the loss along it,
the training loss so far, the text) only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from ..results import Curve, LossGrid, LossLine, Plane
from .connectivity import CurveArtists, draw_curve_plane
from .landscape import TEXT_COLOR, keep_y_label_inside, loss_text
from .style import Style

__all__ = ["ConnectivityFigure"]

_LINE_LOSS_COLOR = "0.35"
_TRAIN_COLOR = "#9467bd"
#: The training loss is also drawn as a running mean over this share of the steps (1/30).
_SMOOTHING_SHARE = 30


class ConnectivityFigure:
    """Draws frame ``row`` (a row of the curve's history) into an RGBA array (H, W, 4)."""

    def __init__(
        self,
        curve: Curve,
        grid: LossGrid,
        plane: Plane,
        style: Style,
        line: LossLine | None,
        curve_losses: Mapping[int, LossLine],
    ):
        self.curve, self.style, self.line = curve, style, line
        self.curve_losses = dict(curve_losses)
        self.fig = Figure(figsize=style.figsize, dpi=style.dpi, facecolor=style.background)
        self.canvas = FigureCanvasAgg(self.fig)
        outer = self._layout()
        draw_curve_plane(self.ax, curve, grid, plane, style, line)
        self.path = CurveArtists(self.ax, curve, plane, style, animated=True)
        self.ax.legend(loc="best", fontsize=style.text_size - 1, framealpha=0.85)
        keep_y_label_inside(self.ax, outer)
        self._draw_along_panel()
        self._draw_training_panel()
        self.info = self.side_info.text(
            0.0,
            1.0,
            "",
            va="top",
            family="monospace",
            fontsize=style.text_size,
            color=TEXT_COLOR,
            animated=True,
        )
        self.moving = [*self.path.artists, self.along, self.trained, self.trend, self.info]
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)
        self._background_rgb = np.array(self.canvas.buffer_rgba())

    @property
    def size(self) -> tuple[int, int]:
        w, h = self.canvas.get_width_height()
        return int(w), int(h)

    def _layout(self) -> Any:
        style, fig = self.style, self.fig
        if style.title:
            fig.suptitle(style.title, fontsize=style.text_size + 3, color=TEXT_COLOR)
        outer = fig.add_gridspec(
            1, 2, width_ratios=(1.55, 1.0), left=0.075, right=0.98, bottom=0.09, top=0.9, wspace=0.3
        )
        self.ax = fig.add_subplot(outer[0, 0])
        side = outer[0, 1].subgridspec(3, 1, height_ratios=(0.55, 1.0, 1.0), hspace=0.55)
        self.side_info = fig.add_subplot(side[0, 0])
        self.side_info.set_axis_off()
        self.side_along = fig.add_subplot(side[1, 0])
        self.side_train = fig.add_subplot(side[2, 0])
        return outer

    def _draw_along_panel(self) -> None:
        ax, style = self.side_along, self.style
        values = [ll.loss for ll in self.curve_losses.values()]
        if self.line is not None:
            inside = (self.line.alphas >= 0) & (self.line.alphas <= 1)
            ax.plot(
                self.line.alphas[inside],
                self.line.loss[inside],
                color=_LINE_LOSS_COLOR,
                linestyle="--",
                linewidth=1.2,
                label="straight line",
            )
            values.append(self.line.loss[inside])
        (self.along,) = ax.plot(
            [], [], color=style.path_colors[0], linewidth=2.0, animated=True, label="curve"
        )
        ax.set_xlim(0, 1)
        ax.set_xlabel("t (0: " + self.curve.labels[0] + ", 1: " + self.curve.labels[1] + ")")
        ax.set_ylabel("loss", fontsize=style.text_size)
        _set_loss_limits(ax, values)
        if values:
            ax.legend(loc="best", fontsize=style.text_size - 1, framealpha=0.85)
        else:
            _say(ax, "loss along the curve not evaluated", style)
        self._tidy(ax)

    def _draw_training_panel(self) -> None:
        ax, style, curve = self.side_train, self.style, self.curve
        assert curve.train_loss is not None and curve.history_steps is not None
        n = int(curve.train_loss.shape[0])
        window = max(1, n // _SMOOTHING_SHARE)
        self.smoothed = _running_mean(curve.train_loss, window)
        (self.trained,) = ax.plot(
            [], [], color=_TRAIN_COLOR, linewidth=0.8, alpha=0.35, animated=True, label="step"
        )
        (self.trend,) = ax.plot(
            [],
            [],
            color=_TRAIN_COLOR,
            linewidth=1.8,
            animated=True,
            label=f"mean of {window} steps" if window > 1 else "step",
        )
        ax.set_xlim(0, max(int(curve.history_steps[-1]), 1))
        ax.set_xlabel("training step of the bends", fontsize=style.text_size)
        ax.set_ylabel("training loss", fontsize=style.text_size)
        _set_loss_limits(ax, [curve.train_loss])
        if not np.isfinite(curve.train_loss).any():
            _say(ax, "no training losses recorded", style)
        elif window > 1:
            ax.legend(loc="upper right", fontsize=style.text_size - 1, framealpha=0.85)
        self._tidy(ax)

    def _tidy(self, ax: Any) -> None:
        ax.tick_params(labelsize=self.style.text_size - 1)
        ax.xaxis.label.set_fontsize(self.style.text_size)
        ax.grid(alpha=0.3)

    def frame(self, row: int) -> np.ndarray:
        """Draw history row ``row``; returns RGBA (H, W, 4)."""
        curve = self.curve
        assert curve.train_loss is not None and curve.history_steps is not None
        self.canvas.restore_region(self.background)
        off_plane = self.path.update(row)
        step = int(curve.history_steps[row])
        losses = curve.train_loss[:step]
        self.trained.set_data(np.arange(1, step + 1), losses)
        self.trend.set_data(np.arange(1, step + 1), self.smoothed[:step])
        along = self.curve_losses.get(row)
        if along is None:
            self.along.set_data([], [])
        else:
            self.along.set_data(along.alphas, along.loss)
        self.info.set_text("\n".join(self._info_lines(step, off_plane, along)))
        for artist in self.moving:
            artist.axes.draw_artist(artist)
        self.canvas.blit(self.fig.bbox)
        return np.array(self.canvas.buffer_rgba())

    def _info_lines(self, step: int, off_plane: float, along: LossLine | None) -> list[str]:
        curve = self.curve
        assert curve.train_loss is not None
        total = int(curve.train_loss.shape[0])
        recent = curve.train_loss[max(0, step - 10) : step]
        recent = recent[np.isfinite(recent)]
        lines = [f"step {step} of {total}"]
        lines.append(
            f"training loss  {loss_text(float(recent.mean()))}" if recent.size else "untrained"
        )
        if along is not None:
            lines.append(f"curve barrier  {along.barrier:.3g}")
        if self.line is not None:
            lines.append(f"line barrier   {self.line.barrier:.3g}")
        lines.append(f"off the plane  {off_plane:.3g}")
        return lines

    def palette_source(self) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]]:
        """(background RGBA, last frame RGBA, colours of the moving artists), to fit a palette."""
        last = self.frame(self.curve.n_rows - 1)
        colors = [self.style.path_colors[0], _TRAIN_COLOR, "k", TEXT_COLOR, "white"]
        colors.append(_faint(_TRAIN_COLOR, 0.35, self.style.background))
        rgb = [tuple(round(255 * c) for c in to_rgb(col)) for col in colors]
        return self._background_rgb, last, rgb  # type: ignore[return-value]


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` finite values at each step (fewer at the start)."""
    finite = np.isfinite(values)
    sums = np.cumsum(np.where(finite, values, 0.0))
    counts = np.cumsum(finite)
    lagged_sums = np.concatenate([np.zeros(window), sums[:-window]])[: len(values)]
    lagged_counts = np.concatenate([np.zeros(window), counts[:-window]])[: len(values)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums - lagged_sums) / (counts - lagged_counts)


def _set_loss_limits(ax: Any, arrays: list[np.ndarray]) -> None:
    """Limits covering every finite value, with 5% room; a log scale past a factor of 10."""
    values = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays] or [np.empty(0)])
    values = values[np.isfinite(values)]
    if not values.size:
        return
    low, high = float(values.min()), float(values.max())
    if low > 0 and high / low > 10:
        ax.set_yscale("log")
        ax.set_ylim(low / 1.2, high * 1.2)
        return
    pad = 0.05 * (high - low) or 0.05 * abs(high) or 0.5
    ax.set_ylim(low - pad, high + pad)


def _faint(color: str, alpha: float, background: str) -> str:
    """``color`` drawn with ``alpha`` over ``background``, as one opaque colour."""
    from matplotlib.colors import to_hex

    mixed = alpha * np.asarray(to_rgb(color)) + (1 - alpha) * np.asarray(to_rgb(background))
    return to_hex((float(mixed[0]), float(mixed[1]), float(mixed[2])))


def _say(ax: Any, text: str, style: Style) -> None:
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=style.text_size - 1,
        color=TEXT_COLOR,
    )
