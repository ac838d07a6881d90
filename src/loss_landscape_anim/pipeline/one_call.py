"""The one-call API with the seed package's signature. It validates every argument into option
objects, then only composes the stages."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from .._validate import (
    check_optional_positive_int,
    check_positive_int,
    check_positive_number,
    is_integer,
)
from ..analysis import DEFAULT_MARGIN, DEFAULT_RESOLUTION
from ..optimizers import check_optimizer_spec
from ..record import train
from ..render import Animation, Style
from ..results import Trajectory
from .core import run_landscape
from .options import (
    DEFAULT_FPS,
    DEFAULT_FRAMES,
    GridOptions,
    PlaneOptions,
    RenderOptions,
    RunOptions,
    check_extras,
)
from .run_files import RunFiles
from .stages import build_default_model, render, timed, wants_decision_regions

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
    export: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    tensorboard: str | os.PathLike | None = None,
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
        export: also write the grid to these files, by suffix: ``.vts``, ``.vtp`` (with the
            path), ``.obj``, ``.stl``, ``.ply`` (:func:`export_surface`), ``.h5`` (Li et al.'s
            layout, :meth:`LossGrid.save_h5`).
        tensorboard: also log the animation (when a GIF), the figure and the surface to this
            TensorBoard folder (:func:`log_tensorboard`), at the run's last step.

    Returns:
        ``(optim_path, loss_steps, accu_steps)`` with ``return_data``; else the
        :class:`Animation` when it was written to a file, None when it was shown (and on the
        ranks other than 0 of a ``torch.distributed`` job, which neither render nor write).
    """
    # -- validate everything before any work or any file is written --------------------------
    epochs = 0 if load_model else check_positive_int(n_epochs, "n_epochs")
    n_frames = check_positive_int(n_frames, "n_frames")
    optimizer = check_optimizer_spec(optimizer)
    if learning_rate is not None:
        check_positive_number(learning_rate, "learning_rate")
    check_optional_positive_int(record_every, "record_every")
    extras = check_extras(
        curvature,
        line_output,
        interactive_output,
        export,
        tensorboard,
        density=density,
        sharpness=sharpness,
    )
    grid_options = GridOptions(resolution, margin, n_examples, strategy, precision)
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
    plane_options = PlaneOptions.of(reduction_method, custom_directions, model)
    grid_options.check_model(model, run.device)
    extras = replace(
        extras,
        show_path_losses=show_path_losses,
        decision_regions=wants_decision_regions(decision_regions, data),
    )

    # -- the stages: files are written only once every stage has succeeded ------------------
    if load_model:
        with timed("loading"):
            trajectory, trained = files.load(model)
    else:
        with timed("training"):
            trajectory = _train(model, data, epochs, optimizer, learning_rate, record_every, run)
            trained = trajectory.apply_to(copy.deepcopy(model).cpu())
    name = trajectory.optimizer or "path"
    result = run_landscape(
        {name: trajectory},
        name,
        trained,
        data,
        plane_options=plane_options,
        grid=grid_options,
        run=run,
        render_options=render_options,
        extras=extras,
        renderer=render,
    )
    if not load_model:
        files.save(trained, trajectory)
    if return_data:
        return (
            [np.array(row) for row in trajectory.params],
            trajectory.loss.tolist(),
            trajectory.accuracy.tolist(),
        )
    if not output_to_file:
        if result.animation is not None:  # None on ranks other than 0 of a distributed job
            result.animation.show()
        return None
    return result.animation


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
