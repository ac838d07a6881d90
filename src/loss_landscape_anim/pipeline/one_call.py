"""The one-call API with the seed package's signature. It validates every argument into option
objects, then only composes the stages."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from .._io import check_output_path
from .._validate import (
    check_optional_positive_int,
    check_positive_int,
    check_positive_number,
    is_integer,
)
from ..analysis import DEFAULT_MARGIN, DEFAULT_RESOLUTION
from ..analysis import decision_regions as compute_regions
from ..directions import project
from ..integrations.distributed import is_writer
from ..record import train
from ..record.optimizers import check_optimizer_spec
from ..render import Animation, Style, frame_indices, interactive_surface
from ..render.interactive import check_plotly, write_interactive_html
from ..results import Trajectory
from .curvature import (
    check_curvature,
    check_sharpness,
    panel_curvature,
    write_curvature_map,
    write_final_curvature,
)
from .line_figure import write_loss_line
from .options import (
    DEFAULT_FPS,
    DEFAULT_FRAMES,
    GridOptions,
    RenderOptions,
    RunOptions,
    check_method,
)
from .run_files import RunFiles
from .stages import (
    build_default_model,
    check_plane_arguments,
    evaluate_grid,
    frame_path_losses,
    render,
    timed,
    wants_decision_regions,
    with_final_weights,
)

__all__ = ["loss_landscape_anim"]


def loss_landscape_anim(
    n_epochs: int | None = None,
    datamodule: Any = None,
    model: nn.Module | None = None,
    optimizer: Any = "adam",
    reduction_method: str = "pca",
    custom_directions: Any = None,
    model_dirpath: str | os.PathLike = "checkpoints/",
    model_filename: str = "model.pt",
    gpus: int = 0,
    load_model: bool = False,
    output_to_file: bool = True,
    output_filename: str | os.PathLike = "sample.gif",
    giffps: int = DEFAULT_FPS,
    sampling: bool = False,
    n_frames: int = DEFAULT_FRAMES,
    seed: int | None = None,
    return_data: bool = False,
    *,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    resolution: int = DEFAULT_RESOLUTION,
    margin: float = DEFAULT_MARGIN,
    device: str | torch.device | None = None,
    n_examples: int | None = None,
    record_every: int | None = None,
    decision_regions: bool | None = None,
    show_path_losses: bool = True,
    style: Style | None = None,
    progress: bool = True,
    strategy: str = "auto",
    precision: str | None = None,
    curvature: bool = False,
    density: bool = False,
    sharpness: float | None = None,
    line_output: str | os.PathLike | None = None,
    view: str = "contour",
    interactive_output: str | os.PathLike | None = None,
) -> Animation | tuple[list[np.ndarray], list[float], list[float]] | None:
    """Train a model, project its path onto 2 directions, evaluate the loss around the final
    weights and animate the path over the loss contours.

    With no arguments but ``n_epochs`` it trains the default MLP (one hidden layer of 50 ReLU
    units, Adam, lr 5e-3) on the built-in spirals data and writes ``sample.gif``.

    Args:
        n_epochs: passes over the training data (ignored with ``load_model=True``).
        datamodule: training data: a data module (``train_dataloader()``), ``DataLoader``,
            ``Dataset`` or ``(X, y)``; default :class:`SpiralsDataModule`.
        model: the model; default ``MLP`` sized from the data module. Its own optimizer and
            learning rate (``GenericModel``) are used; ``optimizer`` and ``learning_rate`` apply to
            the default model and to plain ``nn.Module``s.
        optimizer: ``"adam"``, ``"sgd"``, ``"adagrad"``, ``"rmsprop"`` or an optimizer class.
        reduction_method: ``"pca"``, ``"random"``, ``"filter"``, ``"hessian"`` (the top two
            Hessian eigenvectors at the final weights) or ``"custom"``.
        custom_directions: ``(u, v)`` for ``"custom"``: two vectors of the parameter count.
        model_dirpath, model_filename: where the trained weights (a ``state_dict``) and the
            trajectory (``<stem>.trajectory.npz``) are saved, and loaded from with ``load_model``.
            They are written only once every stage has succeeded: a call that fails leaves the
            files of an earlier run as they were.
        gpus: 1 to train and evaluate on the GPU (an error when there is none).
        load_model: re-render from the saved weights and trajectory, without training.
        output_to_file: write ``output_filename``; False shows the animation instead (inline in
            Jupyter).
        output_filename: ``.gif``, ``.mp4`` or ``.html``.
        giffps: frames per second (at most 50 for a GIF; see :func:`animate`).
        sampling: show ``n_frames`` frames spread over the path instead of every recorded step.
        n_frames: number of frames when ``sampling``.
        seed: seeds the default model's initial weights, data order and random directions; a
            user's model keeps its weights. ``seed=0`` is a seed.
        return_data: return ``(optim_path, loss_steps, accu_steps)``: per recorded step, the flat
            weights (1-D array), the loss and the accuracy.
        learning_rate: for the default model and plain ``nn.Module``s.
        batch_size: for the default data (refused with a ``datamodule``: set its own).
        resolution, margin: the loss grid: points per axis, and room around the path.
        device: overrides ``gpus`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
        n_examples: evaluate the grid on the first ``n_examples`` examples only.
        record_every: record every k-th step (default: every step, up to 1,000).
        decision_regions: draw the model's decision regions (2-input classifiers); default: when
            the inputs are 2-D.
        show_path_losses: evaluate each frame's true loss and the loss at its projection.
        style: how the animation looks.
        progress: progress bars.
        strategy: how the grid evaluates chunks of points (see :func:`compute_loss_grid`).
        precision: None, ``"bf16"`` or ``"fp16"`` (GPUs): the loss grid's products in reduced
            precision (see :func:`compute_loss_grid`); path losses stay in the model's dtype.
        curvature: add a side panel with the Hessian's largest and smallest eigenvalue along the
            path (and 2/lr for SGD), and write the convexity map of the plane beside the output
            as ``<stem>.curvature.png`` (see :func:`curvature_grid`).
        density: the side panel shows the Hessian's whole spectrum along the path (a heat strip
            revealed with the frames, ``curvature_along_path(..., density=True)``), and the
            spectral density at the final weights is written as ``<stem>.density.png``.
        sharpness: a radius: compute the adaptive L2 sharpness (worst case and average case,
            :func:`sharpness`) at the final weights, log it and write ``<stem>.sharpness.json``.
        view: ``"contour"`` or ``"surface"`` (the loss surface in 3D, with a slow camera turn).
        interactive_output: also write the rotatable 3D surface with the path and a step
            slider (:func:`interactive_surface`) here, as one self-contained HTML file (needs
            ``plotly``: the ``[interactive]`` extra).
        line_output: also write the loss on the straight line from the initial to the final
            weights (Goodfellow et al. 2015) as a PNG figure here.

    Returns:
        ``(optim_path, loss_steps, accu_steps)`` with ``return_data``; else the
        :class:`Animation` when it was written to a file, None when it was shown (and on the
        ranks other than 0 of a ``torch.distributed`` job, which neither render nor write).
    """
    # -- validate everything before any work or any file is written --------------------------
    epochs = 0 if load_model else check_positive_int(n_epochs, "n_epochs")
    n_frames = check_positive_int(n_frames, "n_frames")
    method = check_method(reduction_method)
    optimizer = check_optimizer_spec(optimizer)
    if learning_rate is not None:
        check_positive_number(learning_rate, "learning_rate")
    check_optional_positive_int(record_every, "record_every")
    if interactive_output is not None:
        check_plotly()  # before any training
        check_output_path(interactive_output, "interactive_output")
    if line_output is not None:
        check_output_path(line_output, "line_output")
    grid_options = GridOptions(resolution, margin, n_examples, strategy, precision)
    curvature = check_curvature(curvature)
    density = check_curvature(density, "density")
    rho = check_sharpness(sharpness)
    render_options = RenderOptions.of(
        output_filename if output_to_file else None,
        fps=giffps,
        n_frames=n_frames if sampling else None,
        style=style,
        format=None if output_to_file else "gif",
        view=view,
    )
    model_gpus = getattr(model, "gpus", 0) if is_integer(getattr(model, "gpus", 0)) else 0
    run = RunOptions.of(device=device, gpus=gpus or model_gpus, seed=seed, progress=progress)
    files = RunFiles.at(model_dirpath, model_filename)
    model, data = build_default_model(model, datamodule, seed, learning_rate, batch_size, optimizer)
    check_plane_arguments(method, custom_directions, model)
    grid_options.check_model(model, run.device)
    regions = wants_decision_regions(decision_regions, data)

    # -- the stages: files are written only once every stage has succeeded ------------------
    if load_model:
        with timed("loading"):
            trajectory, trained = files.load(model)
    else:
        with timed("training"):
            trajectory = _train(model, data, epochs, optimizer, learning_rate, record_every, run)
            trained = with_final_weights(model, trajectory)
    with timed("projection"):
        hessian = (
            {"model": trained, "data": data, "device": run.device, "n_examples": n_examples}
            if method == "hessian"
            else {}
        )
        plane = project(
            trajectory,
            method,
            directions=custom_directions,
            seed=seed,
            num_threads=run.num_threads,
            **hessian,
        )
    grid = evaluate_grid(trained, data, plane, grid_options, run)
    frames = frame_indices(len(trajectory), render_options.n_frames)
    panels: dict[str, Any] = {}
    if show_path_losses:
        panels["path_losses"] = frame_path_losses(
            trained, data, trajectory, plane, frames, grid_options, run
        )
    if regions:
        with timed("decision regions"):
            panels["decision_regions"] = compute_regions(
                trained, data, trajectory, frames, device=run.device, num_threads=run.num_threads
            )
    if curvature or density:
        panels["curvature"] = panel_curvature(
            trained, data, {"path": trajectory}, frames, grid_options, run, density
        )["path"]
    animation = render(trajectory, plane, grid, render_options, run, **panels)
    if curvature and render_options.output is not None:
        write_curvature_map(
            trained, data, plane, grid, render_options.output, grid_options, run, [plane.path_2d]
        )
    write_final_curvature(
        trained, data, {"path": trajectory}, render_options.output, density, rho, grid_options, run
    )
    if line_output is not None:
        write_loss_line(trained, data, trajectory, line_output, grid_options, run)
    if interactive_output is not None and is_writer():
        with timed("interactive surface"):
            figure = interactive_surface(grid, plane=plane, trajectory=trajectory)
            write_interactive_html(figure, interactive_output)
    if not load_model:
        files.save(trained, trajectory)
    if return_data:
        return (
            [np.array(row) for row in trajectory.params],
            trajectory.loss.tolist(),
            trajectory.accuracy.tolist(),
        )
    if not output_to_file:
        if animation is not None:  # None on ranks other than 0 of a distributed job
            animation.show()
        return None
    return animation


def _train(
    model: nn.Module,
    data: Any,
    epochs: int,
    optimizer: Any,
    learning_rate: float | None,
    record_every: int | None,
    run: RunOptions,
) -> Trajectory:
    """Train ``model``: with its own optimizer when it declares one (``GenericModel``), else with
    ``optimizer`` and ``learning_rate``."""
    own_optimizer = isinstance(getattr(model, "optimizer", None), (str, type))
    return train(
        model,
        data,
        epochs,
        optimizer=None if own_optimizer else optimizer,
        learning_rate=None if own_optimizer else learning_rate,
        seed=run.seed,
        device=run.device,
        record_every=record_every,
        progress=run.progress,
        num_threads=run.num_threads,
    )
