"""Are the optimizers' solutions connected? For each pair of final weights of a comparison: the
barrier on the straight line, on the line after aligning the hidden units (``align(...,
method="best")``), and on a trained Bezier curve (``connect``); with an output file, the animation
of each curve (``<stem>.connect-<a>-<b>.<suffix>``)."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .._runtime import is_writer
from ..analysis import align, compute_loss_grid, connect, loss_along_curve, loss_along_line
from ..analysis.permutations import permutation_spec
from ..evaluate import LossEvaluator, Preparation
from ..evaluate.probes import has_batch_norm
from ..render import Style, animate_connectivity, frame_indices
from ..results import Curve, LossLine, Trajectory
from .options import GridOptions, RenderOptions, RunOptions
from .stages import timed

__all__ = ["CONNECT_POINTS", "Connectivity", "connect_pairs", "connectivity_path"]

logger = logging.getLogger(__name__)

#: Points on each line and curve whose barrier the table reports.
CONNECT_POINTS = 41
#: Points of t for the loss along the curve shown on each frame of its animation.
FRAME_POINTS = 21


@dataclass(frozen=True, eq=False)
class Connectivity:
    """How two solutions are connected.

    Attributes:
        line_barrier: the loss barrier on the straight line between them.
        aligned_barrier: the same after permuting the second one's hidden units to match the
            first (the lowest of no permutation, weight matching and activation matching by the
            loss of the midpoint); NaN when the model's units cannot be permuted.
        curve_barrier: the barrier along the trained curve (BatchNorm statistics recomputed at
            each point).
        curve: the trained curve.
        line: the loss on the straight line.
        curve_loss: the loss along the curve.
    """

    line_barrier: float
    aligned_barrier: float
    curve_barrier: float
    curve: Curve
    line: LossLine
    curve_loss: LossLine


def connect_pairs(
    n_epochs: int | None,
    trained: nn.Module,
    data: Any,
    trajectories: dict[str, Trajectory],
    grid: GridOptions,
    render: RenderOptions | None,
    run: RunOptions,
    preparation: Preparation,
) -> dict[tuple[str, str], Connectivity] | None:
    """The connectivity of every pair of final weights, each curve trained for ``n_epochs``
    (None: not wanted), and with an output file, each curve's animation beside it. The lines
    and curves are evaluated on the run's ``preparation`` (BatchNorm statistics recomputed at
    each point)."""
    if n_epochs is None:
        return None
    bn = "recompute" if has_batch_norm(trained) else "eval"
    evaluator = LossEvaluator(preparation, bn=bn)
    table = {}
    for a, b in itertools.combinations(trajectories, 2):
        with timed(f"connectivity of {a} and {b}"):
            link = _connectivity(
                trained, data, trajectories, (a, b), n_epochs, grid, run, evaluator
            )
        table[(a, b)] = link
        logger.info(
            "barrier between %s and %s: line %.4g, aligned %.4g, curve %.4g",
            a,
            b,
            link.line_barrier,
            link.aligned_barrier,
            link.curve_barrier,
        )
        if render is not None and render.output is not None:
            path = connectivity_path(render.output, a, b)
            _animate(link, path, grid, render, run, evaluator)
    return table


def connectivity_path(output: str | Path, a: str, b: str) -> Path:
    """``<stem>.connect-<a>-<b><suffix>`` beside ``output``."""
    output = Path(output)
    safe = ["".join(c if c.isalnum() or c in "_." else "_" for c in name) for name in (a, b)]
    return output.with_name(f"{output.stem}.connect-{safe[0]}-{safe[1]}{output.suffix}")


def _connectivity(
    trained: nn.Module,
    data: Any,
    trajectories: dict[str, Trajectory],
    pair: tuple[str, str],
    n_epochs: int,
    grid: GridOptions,
    run: RunOptions,
    evaluator: LossEvaluator,
) -> Connectivity:
    a, b = (np.asarray(trajectories[n].final_params, dtype=np.float64) for n in pair)
    line = loss_along_line(
        start=a, end=b, n_points=CONNECT_POINTS, labels=pair, evaluator=evaluator
    )
    aligned_barrier = float("nan")
    try:
        permutation_spec(trained)
    except ValueError as exc:
        logger.warning("no aligned barrier between %s and %s: %s", *pair, exc)
    else:
        aligned = align(
            trained, a, b, data=data, method="best", n_examples=grid.n_examples, device=run.device
        )
        aligned_line = loss_along_line(
            start=a, end=aligned, n_points=CONNECT_POINTS, evaluator=evaluator
        )
        aligned_barrier = aligned_line.barrier
    curve = connect(
        trained,
        data,
        a,
        b,
        epochs=n_epochs,
        seed=run.seed or 0,
        labels=pair,
        device=run.device,
        num_threads=run.num_threads,
        progress=run.progress,
    )
    along = loss_along_curve(curve=curve, n_points=CONNECT_POINTS, evaluator=evaluator)
    return Connectivity(line.barrier, aligned_barrier, along.barrier, curve, line, along)


def _animate(
    link: Connectivity,
    path: Path,
    grid: GridOptions,
    render: RenderOptions,
    run: RunOptions,
    evaluator: LossEvaluator,
) -> None:
    """The curve's animation: the grid of the plane through its ends and bend, and the loss
    along the curve of each frame's row (evaluated, on every rank; rank 0 writes)."""
    curve = link.curve
    plane = curve.plane()
    with timed("the curve's loss grid"):
        surface = compute_loss_grid(
            plane=plane,
            resolution=grid.resolution,
            margin=grid.margin,
            extra_paths=curve.history_paths(plane),
            progress=run.progress,
            evaluator=evaluator,
        )
    rows = frame_indices(curve.n_rows, render.n_frames)
    with timed("losses along the curve's frames"):
        losses = {
            int(r): loss_along_curve(
                curve=curve, n_points=FRAME_POINTS, row=int(r), evaluator=evaluator, accuracy=False
            )
            for r in rows
        }
    if not is_writer():
        return
    with timed("rendering the curve"):
        animate_connectivity(
            curve,
            surface,
            path,
            line=link.line,
            curve_losses=losses,
            fps=render.fps,
            n_frames=render.n_frames,
            format=render.format,
            style=render.style
            or Style(title=f"A low-loss curve from {curve.labels[0]} to {curve.labels[1]}"),
            progress=run.progress,
        )
