"""The one pipeline after training: one or several trajectories -> one plane -> one grid -> the
panels, the extra figures and the animation. :func:`loss_landscape_anim` is its one-trajectory
case, :func:`compare_optimizers` its several-trajectory case.

A run prepares its model and data once (one :class:`~loss_landscape_anim.evaluate.Preparation`)
and builds one loss evaluator and at most one curvature evaluator on it, which every analysis of
the run shares: the grid, the path losses, the lines and barriers, the decision regions, the
curvature along the paths and over the plane, and Hessian directions.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .._runtime import is_writer
from ..analysis import compute_loss_grid, decision_regions, loss_along_line, path_losses
from ..directions import fit_plane
from ..evaluate import CurvatureEvaluator, LossEvaluator, Preparation
from ..render import Animation, Style, frame_indices, interactive_surface
from ..render.interactive import write_interactive_html
from ..results import (
    CurvatureGrid,
    DecisionRegions,
    LossGrid,
    LossLine,
    PathCurvature,
    PathLosses,
    Plane,
    Trajectory,
)
from .connectivity import Connectivity, connect_pairs
from .curvature import (
    panel_curvature,
    write_curvature_map,
    write_density_figure,
    write_sharpness,
)
from .exports import write_exports
from .line_figure import write_loss_lines
from .options import Extras, GridOptions, PlaneOptions, RenderOptions, RunOptions
from .stages import render, timed

__all__ = ["BARRIER_POINTS", "Evaluators", "Landscape", "run_landscape"]

logger = logging.getLogger(__name__)

#: Points on the line between two trajectories' final weights for their barrier.
BARRIER_POINTS = 21


@dataclass(frozen=True, eq=False)
class Landscape:
    """What a run computed after training: the shared ``plane`` (through the centre's final
    weights, with its path), that plane with each path projected on it (``planes``), the grid,
    the panels (path losses, decision regions, curvature along each path), the convexity map,
    the lines from each path's initial to final weights, the barriers between the final weights
    of each pair of paths, the animation (None when not rendered), how each pair's final
    weights are connected (``Extras.connectivity``) and their sharpness (``Extras.sharpness``:
    path -> worst and average case)."""

    plane: Plane
    planes: dict[str, Plane]
    grid: LossGrid
    path_losses: dict[str, PathLosses] | None = None
    decision_regions: DecisionRegions | None = None
    curvature: dict[str, PathCurvature] | None = None
    curvature_grid: CurvatureGrid | None = None
    lines: dict[str, LossLine] = field(default_factory=dict)
    barriers: dict[tuple[str, str], float] = field(default_factory=dict)
    animation: Animation | None = None
    connectivity: dict[tuple[str, str], Connectivity] | None = None
    sharpness: dict[str, dict[str, Any]] | None = None


class Evaluators:
    """The evaluators of one run, on one preparation of the trained model and the data: the
    grid's (its strategy and precision), the one for everything else (the model's dtype and the
    automatic strategy: the same object when the grid asks for nothing else), and the curvature
    evaluator, built when first needed."""

    def __init__(self, trained: nn.Module, data: Any, grid: GridOptions, run: RunOptions):
        self.preparation = Preparation(trained, data, **run.preparation_options(grid))
        self.grid = LossEvaluator(self.preparation, **grid.evaluator_options())
        plain = grid.strategy == "auto" and grid.precision is None
        self.loss = self.grid if plain else LossEvaluator(self.preparation)

    @cached_property
    def curvature(self) -> CurvatureEvaluator:
        return CurvatureEvaluator(self.preparation)


def run_landscape(
    trajectories: dict[str, Trajectory],
    center: str,
    trained: nn.Module,
    data: Any,
    *,
    plane_options: PlaneOptions,
    grid: GridOptions,
    run: RunOptions,
    render_options: RenderOptions | None,
    extras: Extras,
    title: str | None = None,
    renderer: Callable[..., Animation | None] = render,
) -> Landscape:
    """Everything after training, for the ``trajectories`` (name -> path, one or several, all
    of ``trained``'s architecture) with the plane through ``center``'s final weights.

    With one trajectory the animation shows it alone, as :func:`animate` does for a single
    path; with several, all of them on the shared plane, named, with ``title``. ``renderer``
    draws and writes the animation (:func:`~.stages.render`: the caller's own, so that the
    one-call API and the comparison each name the one they use)."""
    single = len(trajectories) == 1
    evaluators = Evaluators(trained, data, grid, run)
    plane, planes = _plane(trajectories, center, plane_options, run, evaluators)
    extra = None if single else [p.path_2d for p in planes.values()]
    with timed("loss grid"):
        loss_grid = compute_loss_grid(
            plane=plane,
            resolution=grid.resolution,
            margin=grid.margin,
            extra_paths=extra,
            progress=run.progress,
            evaluator=evaluators.grid,
        )
    n_rows = max(len(t) for t in trajectories.values())
    frames = frame_indices(n_rows, render_options.n_frames if render_options else None)
    result = Landscape(plane, planes, loss_grid, barriers=_barriers(trajectories, evaluators))
    panels = _panels(trajectories, center, planes, data, frames, extras, run, evaluators)
    result = _with(result, **panels)
    animation = None
    if render_options is not None:
        animation = renderer(
            trajectories[center] if single else trajectories,
            plane if single else planes,
            loss_grid,
            render_options,
            run,
            default_style=Style(title=title) if title else None,
            **_render_panels(panels, single, center),
        )
    figures = _figures(result, trajectories, center, data, render_options, extras, run, evaluators)
    figures["connectivity"] = connect_pairs(
        extras.connectivity,
        trained,
        data,
        trajectories,
        grid,
        render_options,
        run,
        evaluators.preparation,
    )
    if (extras.exports or extras.tensorboard) and is_writer():
        with timed("exports"):
            step = int(trajectories[center].steps[-1])
            write_exports(
                loss_grid, plane, animation, extras.exports, extras.tensorboard, step=step
            )
    return _with(result, animation=animation, **figures)


def _plane(
    trajectories: dict[str, Trajectory],
    center: str,
    options: PlaneOptions,
    run: RunOptions,
    evaluators: Evaluators,
) -> tuple[Plane, dict[str, Plane]]:
    """One plane through ``center``'s final weights fit to every path (``center``'s first), and
    that plane with each path projected onto it."""
    ordered = [trajectories[center]] + [t for n, t in trajectories.items() if n != center]
    hessian = options.method == "hessian"
    with timed("projection"):
        plane = fit_plane(
            [t.params for t in ordered],
            trajectories[center].final_params,
            trajectories[center].layout,
            options.method,
            directions=options.directions,
            seed=run.seed,
            num_threads=run.num_threads,
            evaluator=evaluators.curvature if hessian else None,
            subspace=trajectories[center].subspace,
        )
    if len(trajectories) == 1:
        return plane, {center: plane}
    return plane, {name: plane.with_path(t) for name, t in trajectories.items()}


def _barriers(
    trajectories: dict[str, Trajectory], evaluators: Evaluators
) -> dict[tuple[str, str], float]:
    """The loss barrier between the final weights of each pair of paths."""
    barriers: dict[tuple[str, str], float] = {}
    pairs = list(itertools.combinations(trajectories, 2))
    if not pairs:
        return barriers
    with timed("barriers"):
        for a, b in pairs:
            line = loss_along_line(
                start=trajectories[a].final_params,
                end=trajectories[b].final_params,
                n_points=BARRIER_POINTS,
                labels=(a, b),
                evaluator=evaluators.loss,
            )
            barriers[(a, b)] = line.barrier
            logger.info("loss barrier between %s and %s: %.4g", a, b, line.barrier)
    return barriers


def _panels(
    trajectories: dict[str, Trajectory],
    center: str,
    planes: dict[str, Plane],
    data: Any,
    frames: np.ndarray,
    extras: Extras,
    run: RunOptions,
    evaluators: Evaluators,
) -> dict[str, Any]:
    """The animation's side panels: path losses (one path only: the true loss of several paths
    would crowd the panel), the centre's decision regions, the curvature along every path."""
    panels: dict[str, Any] = {}
    if extras.show_path_losses and len(trajectories) == 1:
        with timed("path losses"):
            panels["path_losses"] = {
                name: path_losses(
                    trajectory=t,
                    plane=planes[name],
                    rows=frames[frames < len(t)],
                    evaluator=evaluators.loss,
                )
                for name, t in trajectories.items()
            }
    if extras.decision_regions:
        with timed("decision regions"):
            shown = frames[frames < len(trajectories[center])]
            panels["decision_regions"] = decision_regions(
                None, data, trajectories[center], shown, evaluator=evaluators.preparation
            )
    if extras.curvature or extras.density:
        panels["curvature"] = panel_curvature(
            trajectories, frames, run, evaluators.curvature, density=extras.density
        )
    return panels


def _render_panels(panels: dict[str, Any], single: bool, center: str) -> dict[str, Any]:
    """The panels as :func:`animate` takes them (a single path's results unwrapped)."""
    out = dict(panels)
    if single:
        for key in ("path_losses", "curvature"):
            if key in out:
                out[key] = out[key][center]
    return out


def _figures(
    result: Landscape,
    trajectories: dict[str, Trajectory],
    center: str,
    data: Any,
    render_options: RenderOptions | None,
    extras: Extras,
    run: RunOptions,
    evaluators: Evaluators,
) -> dict[str, Any]:
    """The figures written beside the animation: the convexity map, the lines, the interactive
    surface."""
    figures: dict[str, Any] = {}
    output = render_options.output if render_options is not None else None
    paths = [p.path_2d for p in result.planes.values()]
    if extras.curvature and output is not None:
        figures["curvature_grid"] = write_curvature_map(
            result.plane, result.grid, output, paths, run, evaluators.curvature
        )
    if extras.density and output is not None:
        write_density_figure(trajectories, output, run, evaluators.curvature)
    if extras.sharpness is not None:
        figures["sharpness"] = write_sharpness(
            trajectories, extras.sharpness, output, run, evaluators.loss
        )
    if extras.line_output is not None:
        figures["lines"] = write_loss_lines(
            trajectories, extras.line_output, evaluators.loss, run.progress
        )
    if extras.interactive_output is not None and is_writer():
        _write_interactive(result, trajectories[center], extras.interactive_output)
    return figures


def _write_interactive(result: Landscape, trajectory: Trajectory, path: Path) -> None:
    with timed("interactive surface"):
        figure = interactive_surface(result.grid, plane=result.plane, trajectory=trajectory)
        write_interactive_html(figure, path)


def _with(result: Landscape, **changes: Any) -> Landscape:
    from dataclasses import replace

    return replace(result, **changes)
