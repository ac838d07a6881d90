"""Compare optimizers in one animation: same initial weights, one shared plane, one grid.

A 2D slice can mislead: a path that looks worse in one optimizer's plane may reach a lower loss
off that plane. The animation shows, for every path, its distance from the plane, so a viewer can
tell when a path leaves the slice the contours describe.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._runtime import resolve_device
from ._validate import check_choice, check_positive_int, check_positive_number
from .api import build_default_model, frame_losses, timed, with_final_weights
from .grid import DEFAULT_RESOLUTION, LossGrid, check_grid_arguments, compute_loss_grid
from .optimizers import OptimizerSpec, check_optimizer_spec
from .projection import METHODS, Plane, check_directions, fit_plane
from .rendering import Animation, Style, animate, frame_indices
from .training import train
from .trajectory import Trajectory
from .writers import format_for

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
    """

    trajectories: dict[str, Trajectory]
    plane: Plane
    planes: dict[str, Plane]
    grid: LossGrid
    center: str
    animation: Animation | None = None


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
    giffps: int = 15,
    n_frames: int | None = 300,
    resolution: int = DEFAULT_RESOLUTION,
    margin: float = 0.3,
    device: str | torch.device | None = None,
    gpus: int = 0,
    n_examples: int | None = None,
    show_path_losses: bool = True,
    style: Style | None = None,
    progress: bool = True,
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
        reduction_method: ``"pca"`` (joint PCA over all paths), ``"random"``, ``"filter"`` or
            ``"custom"`` (with ``custom_directions``).
        seed: seeds the default model, data order and random directions.
        output_filename: ``.gif``, ``.mp4`` or ``.html``; None skips rendering.
        learning_rates: label -> learning rate; others use ``learning_rate`` or the model's.
        giffps, n_frames: frames per second, and at most this many frames.
        resolution, margin, device, gpus, n_examples: as for :func:`loss_landscape_anim`.
    """
    specs = _optimizer_specs(optimizers)
    center = next(iter(specs)) if center is None else center
    if center not in specs:
        raise ValueError(
            f"Expected center to be one of {', '.join(map(repr, specs))} but got {center!r}"
        )
    rates = dict(learning_rates or {})
    unknown = sorted(set(rates) - set(specs))
    if unknown:
        raise ValueError(
            f"learning_rates names optimizers that are not compared: {unknown}; "
            f"compared: {list(specs)}"
        )
    for name, lr in rates.items():
        check_positive_number(lr, f"learning_rates[{name!r}]")
    n_epochs = check_positive_int(n_epochs, "n_epochs")
    giffps = check_positive_int(giffps, "giffps")
    check_grid_arguments(resolution, margin)
    reduction_method = check_choice(reduction_method, "reduction_method", METHODS)
    torch_device = resolve_device(device, gpus)
    fmt = format_for(output_filename) if output_filename is not None else None
    model, data = build_default_model(model, datamodule, seed, learning_rate, batch_size)
    if reduction_method == "custom":
        check_directions(custom_directions, sum(p.numel() for p in model.parameters()))

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
                device=torch_device,
                progress=progress,
            )
    ordered = [trajectories[center]] + [t for n, t in trajectories.items() if n != center]
    with timed("projection"):
        plane = fit_plane(
            [t.params for t in ordered],
            trajectories[center].final_params,
            trajectories[center].layout,
            reduction_method,
            directions=custom_directions,
            seed=seed,
        )
        planes = {name: plane.with_path(t) for name, t in trajectories.items()}
    trained = with_final_weights(model, trajectories[center])
    with timed("loss grid"):
        grid = compute_loss_grid(
            trained,
            data,
            plane,
            resolution=resolution,
            margin=margin,
            device=torch_device,
            n_examples=n_examples,
            extra_paths=[p.path_2d for p in planes.values()],
            progress=progress,
        )
    animation = None
    if output_filename is not None:
        losses = None
        if show_path_losses and len(trajectories) == 1:  # drawn for a single path only
            with timed("path losses"):
                losses = {
                    name: frame_losses(
                        trained,
                        data,
                        t,
                        planes[name],
                        frame_indices(len(t), n_frames),
                        torch_device,
                        n_examples,
                    )
                    for name, t in trajectories.items()
                }
        with timed("rendering"):
            animation = animate(
                trajectories,
                planes,
                grid,
                Path(output_filename),
                fps=giffps,
                n_frames=n_frames,
                format=fmt,
                style=style or Style(title=_title(center)),
                path_losses=losses,
                progress=progress,
            )
    return Comparison(trajectories, plane, planes, grid, center, animation)


def _optimizer_specs(
    optimizers: Sequence[str] | Mapping[str, OptimizerSpec],
) -> dict[str, OptimizerSpec]:
    if isinstance(optimizers, str):
        raise TypeError(
            f"Expected optimizers to be a list of names such as ['adam', 'sgd'] but got the "
            f"string {optimizers!r}"
        )
    if isinstance(optimizers, Mapping):
        specs = {
            str(k): check_optimizer_spec(v, f"optimizers[{k!r}]") for k, v in optimizers.items()
        }
    else:
        specs = {}
        for item in optimizers:
            spec = check_optimizer_spec(item, "optimizers")
            specs[spec if isinstance(spec, str) else getattr(spec, "__name__", str(spec))] = spec
    if len(specs) < 1:
        raise ValueError("Expected at least one optimizer to compare but got none")
    return specs


def _title(center: str) -> str:
    return f"Optimizers on one slice, centred on {center}'s optimum"
