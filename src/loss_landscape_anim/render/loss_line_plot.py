"""``plot_loss_line``: the loss (and accuracy) along a straight line between two weight vectors,
into the caller's axes. Object-oriented matplotlib only, never pyplot's state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..results import LossLine

if TYPE_CHECKING:  # matplotlib is imported when drawing, not with the package
    from matplotlib.figure import Figure

__all__ = ["plot_loss_line"]

_LOSS_COLOR = "#1f77b4"
_ACCURACY_COLOR = "#2ca02c"


def plot_loss_line(
    line: LossLine,
    *,
    ax: Any = None,
    accuracy: bool = True,
    log: bool = True,
    color: str = _LOSS_COLOR,
    label: str = "loss",
) -> tuple[Figure, Any]:
    """Draw ``line.loss`` against alpha, the straight line between the two ends (dashed) and the
    barrier; the accuracy on a second axis when the model is a classifier.

    Args:
        line: from :func:`loss_along_line`.
        ax: the axes to draw into; None makes a new figure (6.4 x 4 in).
        accuracy: draw the accuracy on a twin axis (when it is not NaN).
        log: a log scale for the loss when every loss is positive and they span more than a
            factor of 3.
        color: colour of the loss curve.
        label: the loss curve's label (its legend entry), e.g. a run's name when several lines
            share the axes.

    Returns:
        ``(fig, ax)``: the figure and the loss axes.
    """
    import matplotlib
    from matplotlib.figure import Figure

    if not isinstance(line, LossLine):
        raise TypeError(f"Expected line to be a LossLine but got {type(line).__name__}")
    with matplotlib.rc_context({"font.size": 9, "axes.labelsize": 9}):
        if ax is None:
            fig = Figure(figsize=(6.4, 4.0), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.get_figure()
        _draw_loss(ax, line, color, log, label)
        if accuracy and np.isfinite(line.accuracy).any():
            twin = ax.twinx()
            twin.plot(line.alphas, line.accuracy, color=_ACCURACY_COLOR, linewidth=1.2)
            twin.set_ylabel("accuracy", color=_ACCURACY_COLOR)
            twin.set_ylim(0, 1.02)
            twin.tick_params(axis="y", colors=_ACCURACY_COLOR)
    return fig, ax


def _draw_loss(ax: Any, line: LossLine, color: str, log: bool, label: str) -> None:
    alphas, loss = line.alphas, line.loss
    ax.plot(alphas, loss, color=color, linewidth=2.0, label=label)
    inside = (alphas >= 0) & (alphas <= 1)
    ax.plot(
        alphas[inside],
        line.linear[inside],
        color="0.35",
        linestyle="--",
        linewidth=1.0,
        label="straight line between the ends",
    )
    barrier = line.barrier
    if np.isfinite(barrier):
        k = int(np.argmax(np.where(inside, loss - line.linear, -np.inf)))
        ax.plot(
            [alphas[k], alphas[k]],
            [line.linear[k], loss[k]],
            color="#d62728",
            linewidth=1.5,
            label=f"barrier {barrier:.3g}",
        )
    # Each end named inside the axes, beside its dotted line: room above stays for a title.
    for a, name, side in ((0.0, line.labels[0], 1), (1.0, line.labels[1], -1)):
        ax.axvline(a, color="0.6", linestyle=":", linewidth=1.0)
        ax.annotate(
            name,
            (a, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3 * side, -4),
            textcoords="offset points",
            ha="left" if side > 0 else "right",
            va="top",
            color="0.3",
        )
    finite = loss[np.isfinite(loss)]
    if log and finite.size and finite.min() > 0 and finite.max() > 3 * finite.min():
        from .loss_scale import nice_ticks

        ax.set_yscale("log")
        ticks = nice_ticks(float(finite.min()), float(finite.max()), log=True)
        ax.set_yticks(ticks, labels=[f"{t:.6g}" for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel("alpha (0: " + line.labels[0] + ", 1: " + line.labels[1] + ")")
    ax.set_ylabel("loss", color=color)
    ax.set_xlim(alphas[0], alphas[-1])
    ax.grid(alpha=0.3)
    ax.legend(loc="best", framealpha=0.85)
