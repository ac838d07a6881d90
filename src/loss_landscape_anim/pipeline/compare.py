"""Compare optimizers in one animation: same initial weights, one shared plane, one grid.

A 2D slice can mislead: a path that looks worse in one optimizer's plane may reach a lower loss
off that plane. The animation shows, for every path, its distance from the plane, so a viewer can
tell when a path leaves the slice the contours describe.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from .._validate import check_optional_positive_int, check_positive_int, check_positive_number
from ..analysis import DEFAULT_MARGIN, DEFAULT_RESOLUTION
from ..optimizers import OptimizerSpec, check_optimizer_spec
from ..record import train
from ..render import Animation, Style
from ..results import (
    CurvatureGrid,
    DecisionRegions,
    LossGrid,
    LossLine,
    PathCurvature,
    Plane,
    Trajectory,
)
from .connectivity import Connectivity
from .core import BARRIER_POINTS, run_landscape
from .options import (
    DEFAULT_FPS,
    DEFAULT_FRAMES,
    GridOptions,
    PlaneOptions,
    RenderOptions,
    RunOptions,
    check_extras,
    check_method,
)
from .stages import build_default_model, render, timed, wants_decision_regions

__all__ = ["BARRIER_POINTS", "Comparison", "compare_optimizers"]

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
            of optimizers ``a`` and ``b`` (:attr:`LossLine.barrier`, never below 0): about 0
            when they found the same basin, clearly positive when a ridge separates them.
        lines: optimizer name -> the loss on the line from the initial to its final weights
            (with ``line_output``).
        decision_regions: the decision regions of ``center``'s path (2-input classifiers).
        connectivity: ``(a, b)`` -> the barrier on the line, on the line after aligning the
            hidden units, and on a trained curve, with the curve (``connectivity=True``).
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
    lines: dict[str, LossLine] = field(default_factory=dict)
    decision_regions: DecisionRegions | None = None
    connectivity: dict[tuple[str, str], Connectivity] | None = None


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
    decision_regions: bool | None = False,
    line_output: str | os.PathLike | None = None,
    interactive_output: str | os.PathLike | None = None,
    export: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    tensorboard: str | os.PathLike | None = None,
    connectivity: bool = False,
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
        decision_regions: draw ``center``'s decision regions (2-input classifiers; None: when
            the inputs are 2-D; default False, to keep the panels of several paths readable).
        line_output: also write the loss on the line from the initial weights to each
            optimizer's final weights, one curve each, as a PNG figure here.
        interactive_output: also write the rotatable 3D surface with ``center``'s path as one
            self-contained HTML file here (needs ``plotly``).
        export, tensorboard: also write the grid to these files and log the animation, figure
            and surface to this TensorBoard folder, as for :func:`loss_landscape_anim`.
        connectivity: for each pair of optimizers, the barrier on the line between their final
            weights, after aligning their hidden units, and on a trained Bezier curve (Garipov
            et al. 2018, trained for ``n_epochs``), in ``Comparison.connectivity``; with an output
            file, each curve's animation beside it as ``<stem>.connect-<a>-<b>.<suffix>``.
        density, sharpness: as for :func:`loss_landscape_anim`, at each optimizer's final
            weights.
    """
    specs = _optimizer_specs(optimizers)
    center = next(iter(specs)) if center is None else _label(center, specs, "center")
    rates = _learning_rates(learning_rates, specs)
    n_epochs = check_positive_int(n_epochs, "n_epochs")
    check_method(reduction_method)
    grid_options = GridOptions(resolution, margin, n_examples, strategy, precision)
    extras = check_extras(
        curvature,
        line_output,
        interactive_output,
        export,
        tensorboard,
        density=density,
        sharpness=sharpness,
    )
    check_positive_int(giffps, "giffps")
    check_optional_positive_int(n_frames, "n_frames")
    render_options = (
        RenderOptions.of(output_filename, fps=giffps, n_frames=n_frames, style=style, view=view)
        if output_filename is not None
        else None
    )
    run = RunOptions.of(device=device, gpus=gpus, seed=seed, progress=progress)
    model, data = build_default_model(model, datamodule, seed, learning_rate, batch_size)
    plane_options = PlaneOptions.of(reduction_method, custom_directions, model)
    grid_options.check_model(model, run.device)
    if not isinstance(connectivity, bool):
        raise ValueError(f"Expected connectivity to be True or False but got {connectivity!r}")
    extras = replace(
        extras,
        show_path_losses=show_path_losses,
        decision_regions=wants_decision_regions(decision_regions, data),
        connectivity=n_epochs if connectivity else None,
    )

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
    trained = trajectories[center].apply_to(copy.deepcopy(model).cpu())
    result = run_landscape(
        trajectories,
        center,
        trained,
        data,
        plane_options=plane_options,
        grid=grid_options,
        run=run,
        render_options=render_options,
        extras=extras,
        title=_title(center),
        renderer=render,
    )
    return Comparison(
        trajectories,
        result.plane,
        result.planes,
        result.grid,
        center,
        result.animation,
        result.curvature,
        result.curvature_grid,
        result.barriers,
        result.lines,
        result.decision_regions,
        result.connectivity,
    )


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
