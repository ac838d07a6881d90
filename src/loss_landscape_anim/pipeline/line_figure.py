"""The 1D figure of a run: the loss on the straight line from the initial to the final weights
(Goodfellow et al. 2015) of each path, written as a PNG beside the animation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._io import atomic_path
from .._runtime import is_writer
from ..analysis import loss_along_line
from ..evaluate import LossEvaluator
from ..render import plot_loss_line
from ..results import LossLine, Trajectory
from .stages import timed

__all__ = ["LINE_MARGIN", "interactive_path", "line_path", "write_loss_lines"]

#: How far the run's line extends beyond the initial and final weights (share of its length).
LINE_MARGIN = 0.25
#: Colours of the lines of several paths, in order (one path: the figure's default).
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def line_path(output: str | os.PathLike) -> Path:
    """``<stem>.line.png`` beside ``output`` (``sample.gif`` -> ``sample.line.png``)."""
    output = Path(output)
    return output.with_name(output.stem + ".line.png")


def interactive_path(output: str | os.PathLike) -> Path:
    """``<stem>.interactive.html`` beside ``output``."""
    output = Path(output)
    return output.with_name(output.stem + ".interactive.html")


def write_loss_lines(
    trajectories: dict[str, Trajectory],
    path: str | os.PathLike,
    evaluator: LossEvaluator,
    progress: bool = False,
) -> dict[str, LossLine]:
    """Evaluate the loss from each trajectory's first to its last row and write the figure to
    ``path`` (PNG, atomically): one curve per trajectory, on one axes."""
    with timed("loss line"):
        lines = {
            name: loss_along_line(
                start=t.params[0],
                end=t.final_params,
                margin=LINE_MARGIN,
                labels=("initial", "final"),
                evaluator=evaluator,
            )
            for name, t in trajectories.items()
        }
        if not is_writer():  # rank 0 of a distributed job writes
            return lines
        if len(lines) == 1:
            line = next(iter(lines.values()))
            fig, ax = plot_loss_line(line)
            ax.set_title(
                "Loss on the line from the initial to the final weights "
                f"(barrier {line.barrier:.3g})"
            )
        else:
            fig, ax = _several(lines)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
    return lines


def _several(lines: dict[str, LossLine]) -> tuple[Any, Any]:
    """The lines of several paths on one axes, each named in the legend with its barrier."""
    ax = None
    names = []
    for k, (name, line) in enumerate(lines.items()):
        names.append(f"{name} (barrier {line.barrier:.3g})")
        fig, ax = plot_loss_line(
            line, ax=ax, color=_COLORS[k % len(_COLORS)], accuracy=False, label=names[-1]
        )
    assert ax is not None
    handles, labels = ax.get_legend_handles_labels()
    kept = [(h, lab) for h, lab in zip(handles, labels, strict=True) if lab in names]
    ax.legend([h for h, _ in kept], [lab for _, lab in kept], fontsize=8)
    ax.set_ylabel("loss", color="black")  # not the last curve's colour: there are several
    ax.set_title("Loss on the line from the initial to each path's final weights")
    return fig, ax
