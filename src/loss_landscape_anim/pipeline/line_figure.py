"""The 1D figure of a run: the loss on the straight line from the initial to the final weights
(Goodfellow et al. 2015), written as a PNG beside the animation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from .._io import atomic_path
from ..analysis import loss_along_line
from ..integrations.distributed import is_writer
from ..render import plot_loss_line
from ..results import LossLine, Trajectory
from .options import GridOptions, RunOptions
from .stages import timed

__all__ = ["LINE_MARGIN", "interactive_path", "line_path", "write_loss_line"]

#: How far the run's line extends beyond the initial and final weights (share of its length).
LINE_MARGIN = 0.25


def line_path(output: str | os.PathLike) -> Path:
    """``<stem>.line.png`` beside ``output`` (``sample.gif`` -> ``sample.line.png``)."""
    output = Path(output)
    return output.with_name(output.stem + ".line.png")


def interactive_path(output: str | os.PathLike) -> Path:
    """``<stem>.interactive.html`` beside ``output``."""
    output = Path(output)
    return output.with_name(output.stem + ".interactive.html")


def write_loss_line(
    trained: nn.Module,
    data: Any,
    trajectory: Trajectory,
    path: str | os.PathLike,
    grid: GridOptions,
    run: RunOptions,
) -> LossLine:
    """Evaluate the loss from the trajectory's first to its last row and write the figure to
    ``path`` (PNG, atomically)."""
    with timed("loss line"):
        line = loss_along_line(
            trained,
            data,
            trajectory.params[0],
            trajectory.final_params,
            margin=LINE_MARGIN,
            labels=("initial", "final"),
            device=run.device,
            n_examples=grid.n_examples,
            num_threads=run.num_threads,
        )
        if not is_writer():  # rank 0 of a distributed job writes
            return line
        fig, ax = plot_loss_line(line)
        ax.set_title(
            f"Loss on the line from the initial to the final weights (barrier {line.barrier:.3g})"
        )
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
    return line
