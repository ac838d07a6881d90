"""Compare optimizers in one animation: same initial weights, one shared plane, one grid.

A 2D slice can mislead: a path that looks worse in one optimizer's plane may reach a lower loss
off that plane. The animation shows, for every path, its distance from the plane, so a viewer can
tell when a path leaves the slice the contours describe.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .._validate import check_optional_positive_int, check_positive_int, check_positive_number
from ..analysis import DEFAULT_MARGIN, DEFAULT_RESOLUTION, loss_along_line
from ..directions import fit_plane
from ..record import train
from ..record.optimizers import OptimizerSpec, check_optimizer_spec
from ..render import Animation, Style, frame_indices
from ..results import CurvatureGrid, LossGrid, PathCurvature, PathLosses, Plane, Trajectory
from .curvature import (
    check_curvature,
    check_sharpness,
    panel_curvature,
    write_curvature_map,
    write_final_curvature,
)
from .options import (
    DEFAULT_FPS,
    DEFAULT_FRAMES,
    GridOptions,
    RenderOptions,
    RunOptions,
    check_method,
)
from .stages import (
    build_default_model,
    check_plane_arguments,
    evaluate_grid,
    frame_path_losses,
    render,
    timed,
    with_final_weights,
)

__all__ = ["Comparison", "compare_optimizers"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Comparison:
    """The result of :func:`compare_optimizers`.

    Attributes:
        trajectories: optimizer name -> its recorded path (all start from the same weights).
        plane: the shared plane, through the final weights of ``center``, with ``center``'s path.
        planes: optimizer name -> the shared plane with that optimizer's path projected on it.
        grid: the loss grid covering every path.
        center: the optimizer whose final weights are the plane's origin.
        animation: the rendered animation, or None when not rendered.
        curvature: optimizer name -> the Hessian's extreme eigenvalues along its path
            (``curvature=True``).
        curvature_grid: the convexity map of the plane (``curvature=True`` with an output file).
        barriers: ``(a, b)`` -> the loss barrier on the straight line between the final weights
            of optimizers ``a`` and ``b`` (:attr:`LossLine.barrier`): about 0 or below when they
            found the same basin, clearly positive when a ridge separates them.
    """

    trajectories: dict[str, Trajectory]
    plane: Plane
    planes: dict[str, Plane]
    grid: LossGrid
    center: str
    animation: Animation | None = None
    curvature: dict[str, PathCurvature] | None = None
    curvature_grid: CurvatureGrid | None = None
    barriers: dict[tuple[str, str], float] = field(default_factory=dict)


def compare_optimizers(
    optimizers: Sequence[str] | Mapping[str, OptimizerSpec],
    n_epochs: int,
    *,
    model: nn.Module | None = None,
    datamodule: Any = None,
    center: str | None = None,
    reduction_method: str = "pca",
    custom_directions: Any = None,
    seed: int | None = None,
    output_filename: str | os.PathLike | None = "compare.gif",
    learning_rates: Mapping[str, float] | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    giffps: int = DEFAULT_FPS,
    n_frames: int | None = DEFAULT_FRAMES,
    resolution: int = DEFAULT_RESOLUTION,
    margin: float = DEFAULT_MARGIN,
    device: str | torch.device | None = None,
    gpus: int = 0,
    n_examples: int | None = None,
    show_path_losses: bool = True,
    style: Style | None = None,
    progress: bool = True,
    strategy: str = "auto",
    precision: str | None = None,
    curvature: bool = False,
    view: str = "contour",
    density: bool = False,
    sharpness: float | None = None,
) -> Comparison:
    """Train one copy of the model per optimizer from identical initial weights, project all
    paths onto one shared plane through ``center``'s final weights, and animate them together.

    Args:
        optimizers: names (``"adam"``, ``"sgd"``, ``"adagrad"``, ``"rmsprop"``), or a mapping
            label -> name / optimizer class.
        n_epochs: training epochs for each optimizer.
        model: the model (default: the MLP on the data); each optimizer trains its own copy.
        datamodule: training and evaluation data (default: spirals).
        center: the optimizer whose final weights centre the plane (default: the first).
            Names are matched ignoring case everywhere (``optimizers``, ``center``,
            ``learning_rates``); a name given twice is refused.
        reduction_method: ``"pca"`` (joint PCA over all paths), ``"random"``, ``"filter"``,
            ``"hessian"`` (at ``center``'s final weights) or ``"custom"`` (with
            ``custom_directions``).
        seed: seeds the default model, data order and random directions.
        output_filename: ``.gif``, ``.mp4`` or ``.html``; None skips rendering.
        learning_rates: label -> learning rate; others use ``learning_rate`` or the model's.
        giffps, n_frames: frames per second, and at most this many frames.
        resolution, margin, device, gpus, n_examples, view, strategy, precision: as for
            :func:`loss_landscape_anim`.
        curvature: a side panel with the Hessian's extreme eigenvalues along each path (and
            2/lr for SGD), and the convexity map written beside the output as
            ``<stem>.curvature.png``.
        density, sharpness: as for :func:`loss_landscape_anim`, at each optimizer's final
            weights (the panel's spectrum is the first optimizer's).
    """
    specs = _optimizer_specs(optimizers)
    center = next(iter(specs)) if center is None else _label(center, specs, "center")
    rates = _learning_rates(learning_rates, specs)
    n_epochs = check_positive_int(n_epochs, "n_epochs")
    method = check_method(reduction_method)
    grid_options = GridOptions(resolution, margin, n_examples, strategy, precision)
    curvature, density = check_curvature(curvature), check_curvature(density, "density")
    rho = check_sharpness(sharpness)
    check_positive_int(giffps, "giffps")
    check_optional_positive_int(n_frames, "n_frames")
    render_options = (
        RenderOptions.of(output_filename, fps=giffps, n_frames=n_frames, style=style, view=view)
        if output_filename is not None
        else None
    )
    run = RunOptions.of(device=device, gpus=gpus, seed=seed, progress=progress)
    model, data = build_default_model(model, datamodule, seed, learning_rate, batch_size)
    check_plane_arguments(method, custom_directions, model)
    grid_options.check_model(model, run.device)

    trajectories: dict[str, Trajectory] = {}
    for name, spec in specs.items():
        with timed(f"training {name}"):
            trajectories[name] = train(
                model,
                data,
                n_epochs,
                optimizer=spec,
                learning_rate=rates.get(name, learning_rate),
                seed=seed,
                device=run.device,
                progress=progress,
                num_threads=run.num_threads,
            )
    trained = with_final_weights(model, trajectories[center])
    hessian = (trained, data, n_examples) if method == "hessian" else None
    plane, planes = _shared_plane(trajectories, center, method, custom_directions, run, hessian)
    extra = [p.path_2d for p in planes.values()]
    grid = evaluate_grid(trained, data, plane, grid_options, run, extra_paths=extra)
    barriers = _barriers(trained, data, trajectories, grid_options, run)
    animation = curvature_map = None
    curves = None
    if curvature or density:
        n_rows = max(len(t) for t in trajectories.values())
        shown = frame_indices(n_rows, render_options.n_frames if render_options else None)
        curves = panel_curvature(trained, data, trajectories, shown, grid_options, run, density)
    if render_options is not None:
        losses: dict[str, PathLosses] | None = None
        if show_path_losses and len(trajectories) == 1:  # drawn for a single path only
            losses = {
                name: frame_path_losses(
                    trained,
                    data,
                    t,
                    planes[name],
                    frame_indices(len(t), render_options.n_frames),
                    grid_options,
                    run,
                )
                for name, t in trajectories.items()
            }
        animation = render(
            trajectories,
            planes,
            grid,
            render_options,
            run,
            default_style=Style(title=_title(center)),
            path_losses=losses,
            curvature=curves,
        )
        if curvature and render_options.output is not None:
            curvature_map = write_curvature_map(
                trained, data, plane, grid, render_options.output, grid_options, run, extra
            )
    output = None if render_options is None else render_options.output
    write_final_curvature(trained, data, trajectories, output, density, rho, grid_options, run)
    return Comparison(
        trajectories, plane, planes, grid, center, animation, curves, curvature_map, barriers
    )


#: Points on the line between two optimizers' final weights for their barrier.
BARRIER_POINTS = 21


def _barriers(
    trained: nn.Module,
    data: Any,
    trajectories: dict[str, Trajectory],
    grid: GridOptions,
    run: RunOptions,
) -> dict[tuple[str, str], float]:
    """The loss barrier between the final weights of each pair of optimizers."""
    barriers = {}
    with timed("barriers"):
        for a, b in itertools.combinations(trajectories, 2):
            line = loss_along_line(
                trained,
                data,
                trajectories[a].final_params,
                trajectories[b].final_params,
                n_points=BARRIER_POINTS,
                labels=(a, b),
                device=run.device,
                n_examples=grid.n_examples,
                num_threads=run.num_threads,
            )
            barriers[(a, b)] = line.barrier
            logger.info("loss barrier between %s and %s: %.4g", a, b, line.barrier)
    return barriers


def _learning_rates(
    learning_rates: Mapping[str, float] | None, specs: Mapping[str, OptimizerSpec]
) -> dict[str, float]:
    if learning_rates is not None and not isinstance(learning_rates, Mapping):
        raise TypeError(
            "Expected learning_rates to be a mapping optimizer name -> learning rate but got "
            f"{type(learning_rates).__name__}"
        )
    rates: dict[str, float] = {}
    for key, lr in (learning_rates or {}).items():
        name = _label(key, specs, "a key of learning_rates")
        if name in rates:
            raise ValueError(f"learning_rates gives {name!r} twice (names ignore case)")
        rates[name] = check_positive_number(lr, f"learning_rates[{key!r}]")
    return rates


def _label(name: Any, specs: Mapping[str, OptimizerSpec], what: str) -> str:
    """The label of ``specs`` that ``name`` names: labels are matched ignoring case, as names
    are everywhere."""
    found = [k for k in specs if isinstance(name, str) and k.casefold() == name.casefold()]
    if not found:
        raise ValueError(
            f"Expected {what} to be one of the compared optimizers "
            f"{', '.join(map(repr, specs))} but got {name!r}"
        )
    return found[0]


def _shared_plane(
    trajectories: dict[str, Trajectory],
    center: str,
    method: str,
    custom_directions: Any,
    run: RunOptions,
    hessian: tuple[nn.Module, Any, int | None] | None = None,
) -> tuple[Plane, dict[str, Plane]]:
    """One plane through ``center``'s final weights fit to every path (``center``'s first), and
    that plane with each path projected onto it. ``hessian``: (trained model, data,
    n_examples) for Hessian directions."""
    model, data, n_examples = hessian if hessian is not None else (None, None, None)
    ordered = [trajectories[center]] + [t for n, t in trajectories.items() if n != center]
    with timed("projection"):
        plane = fit_plane(
            [t.params for t in ordered],
            trajectories[center].final_params,
            trajectories[center].layout,
            method,
            directions=custom_directions,
            seed=run.seed,
            num_threads=run.num_threads,
            model=model,
            data=data,
            device=run.device if hessian is not None else None,
            n_examples=n_examples,
        )
        return plane, {name: plane.with_path(t) for name, t in trajectories.items()}


def _optimizer_specs(
    optimizers: Sequence[str] | Mapping[str, OptimizerSpec],
) -> dict[str, OptimizerSpec]:
    if isinstance(optimizers, str):
        raise TypeError(
            f"Expected optimizers to be a list of names such as ['adam', 'sgd'] but got the "
            f"string {optimizers!r}"
        )
    if isinstance(optimizers, Mapping):
        items = [
            (str(k), check_optimizer_spec(v, f"optimizers[{k!r}]")) for k, v in optimizers.items()
        ]
    else:
        items = []
        for item in optimizers:
            spec = check_optimizer_spec(item, "optimizers")
            items.append(
                (spec if isinstance(spec, str) else getattr(spec, "__name__", str(spec)), spec)
            )
    specs: dict[str, OptimizerSpec] = {}
    for label, spec in items:
        twice = [k for k in specs if k.casefold() == label.casefold()]
        if twice:
            raise ValueError(
                f"Expected each optimizer once but optimizers names {twice[0]!r} and {label!r}, "
                "the same name (names ignore case): give distinct labels in a mapping to "
                "compare one optimizer with itself"
            )
        specs[label] = spec
    if len(specs) < 1:
        raise ValueError("Expected at least one optimizer to compare but got none")
    return specs


def _title(center: str) -> str:
    return f"Optimizers on one slice, centred on {center}'s optimum"
