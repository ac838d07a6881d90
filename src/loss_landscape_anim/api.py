"""The one-call API with the seed package's signature. It only composes the four stages."""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ._layout import ParamLayout
from ._runtime import resolve_device, seeded
from ._validate import (
    check_choice,
    check_optional_positive_int,
    check_positive_int,
    check_positive_number,
)
from .data import SpiralsDataModule
from .errors import IncompatibleFileError
from .grid import DEFAULT_RESOLUTION, check_grid_arguments, compute_loss_grid, path_losses
from .models import MLP
from .optimizers import check_optimizer_spec
from .projection import METHODS, check_directions, project
from .rendering import Animation, PathLosses, Style, animate, frame_indices
from .training import train
from .trajectory import Trajectory
from .weights import load_weights, save_weights
from .writers import format_for

__all__ = ["loss_landscape_anim"]

logger = logging.getLogger(__name__)


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
    giffps: int = 15,
    sampling: bool = False,
    n_frames: int = 300,
    seed: int | None = None,
    return_data: bool = False,
    *,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    resolution: int = DEFAULT_RESOLUTION,
    margin: float = 0.3,
    device: str | torch.device | None = None,
    n_examples: int | None = None,
    record_every: int | None = None,
    decision_regions: bool | None = None,
    show_path_losses: bool = True,
    style: Style | None = None,
    progress: bool = True,
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
        reduction_method: ``"pca"``, ``"random"``, ``"filter"`` or ``"custom"``.
        custom_directions: ``(u, v)`` for ``"custom"``: two vectors of the parameter count.
        model_dirpath, model_filename: where the trained weights (a ``state_dict``) and the
            trajectory (``<stem>.trajectory.npz``) are saved, and loaded from with ``load_model``.
        gpus: 1 to train and evaluate on the GPU (an error when there is none).
        load_model: re-render from the saved weights and trajectory, without training.
        output_to_file: write ``output_filename``; False shows the animation instead (inline in
            Jupyter).
        output_filename: ``.gif``, ``.mp4`` or ``.html``.
        giffps: frames per second.
        sampling: show ``n_frames`` frames spread over the path instead of every recorded step.
        n_frames: number of frames when ``sampling``.
        seed: seeds the default model's initial weights, data order and random directions; a
            user's model keeps its weights. ``seed=0`` is a seed.
        return_data: return ``(optim_path, loss_steps, accu_steps)``: per recorded step, the flat
            weights (1-D array), the loss and the accuracy.
        learning_rate, batch_size: for the default model and data.
        resolution, margin: the loss grid: points per axis, and room around the path.
        device: overrides ``gpus`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
        n_examples: evaluate the grid on the first ``n_examples`` examples only.
        record_every: record every k-th step (default: every step, up to 1,000).
        decision_regions: draw the model's decision regions (2-input classifiers); default: when
            the inputs are 2-D.
        show_path_losses: evaluate each frame's true loss and the loss at its projection.
        style: how the animation looks.
        progress: progress bars.

    Returns:
        ``(optim_path, loss_steps, accu_steps)`` with ``return_data``; else the
        :class:`Animation` when it was written to a file, None when it was shown.
    """
    # -- validate everything before any work or any file is written --------------------------
    epochs = 0 if load_model else check_positive_int(n_epochs, "n_epochs")
    giffps = check_positive_int(giffps, "giffps")
    n_frames = check_positive_int(n_frames, "n_frames")
    reduction_method = check_choice(reduction_method, "reduction_method", METHODS)
    optimizer = check_optimizer_spec(optimizer)
    if learning_rate is not None:
        check_positive_number(learning_rate, "learning_rate")
    if decision_regions and getattr(datamodule, "input_dim", 2) != 2:
        raise ValueError(
            "decision_regions=True needs 2-D inputs (a 2-input classifier) but the data have "
            f"input_dim {datamodule.input_dim!r}"
        )
    check_grid_arguments(resolution, margin)
    check_optional_positive_int(n_examples, "n_examples")
    check_optional_positive_int(record_every, "record_every")
    if style is not None and not isinstance(style, Style):
        raise TypeError(f"Expected style to be a Style or None but got {type(style).__name__}")
    model_gpus = getattr(model, "gpus", 0) if isinstance(getattr(model, "gpus", 0), int) else 0
    torch_device = resolve_device(device, gpus or model_gpus)
    output = Path(output_filename) if output_to_file else None
    fmt = format_for(output, None if output_to_file else "gif")
    ckpt = Path(model_dirpath) / model_filename
    trajectory_file = ckpt.with_name(ckpt.stem + ".trajectory.npz")

    model, data = build_default_model(model, datamodule, seed, learning_rate, batch_size, optimizer)
    layout = ParamLayout.of(model)
    if reduction_method == "custom":
        check_directions(custom_directions, layout.n_params)

    # -- the four stages --------------------------------------------------------------------
    with timed("training" if not load_model else "loading"):
        if load_model:
            trajectory, trained = _load_run(model, ckpt, trajectory_file)
        else:
            own_optimizer = isinstance(getattr(model, "optimizer", None), (str, type))
            trajectory = train(
                model,
                data,
                epochs,
                optimizer=None if own_optimizer else optimizer,
                learning_rate=None if own_optimizer else learning_rate,
                seed=seed,
                device=torch_device,
                record_every=record_every,
                progress=progress,
            )
            trained = with_final_weights(model, trajectory)
            save_weights(trained, ckpt)
            trajectory.save(trajectory_file)
    with timed("projection"):
        plane = project(trajectory, reduction_method, directions=custom_directions, seed=seed)
    with timed("loss grid"):
        grid = compute_loss_grid(
            trained,
            data,
            plane,
            resolution=resolution,
            margin=margin,
            device=torch_device,
            n_examples=n_examples,
            progress=progress,
        )
    frames = frame_indices(len(trajectory), n_frames if sampling else None)
    losses = None
    if show_path_losses:
        with timed("path losses"):
            losses = frame_losses(
                trained, data, trajectory, plane, frames, torch_device, n_examples
            )
    regions = None
    if decision_regions or (decision_regions is None and _is_2d_classifier(data)):
        from .decision import decision_regions as compute_regions

        with timed("decision regions"):
            regions = compute_regions(trained, data, trajectory, frames, device=torch_device)
    with timed("rendering"):
        animation = animate(
            trajectory,
            plane,
            grid,
            output,
            fps=giffps,
            n_frames=n_frames if sampling else None,
            format=fmt,
            style=style,
            path_losses=losses,
            decision_regions=regions,
            progress=progress,
        )
    if return_data:
        return (
            [np.array(row) for row in trajectory.params],
            trajectory.loss.tolist(),
            trajectory.accuracy.tolist(),
        )
    if not output_to_file:
        animation.show()
        return None
    return animation


def build_default_model(
    model: nn.Module | None,
    datamodule: Any,
    seed: int | None,
    learning_rate: float | None,
    batch_size: int | None,
    optimizer: Any = "adam",
) -> tuple[nn.Module, Any]:
    """The model and data to use: the given ones, else spirals and an MLP seeded by ``seed``."""
    data = datamodule if datamodule is not None else SpiralsDataModule(batch_size=batch_size)
    if model is None:
        with seeded(seed):
            lr = 5e-3 if learning_rate is None else learning_rate
            model = MLP(_input_dim(data), _num_classes(data), lr, optimizer=optimizer)
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected model to be a torch.nn.Module but got {type(model).__name__}")
    return model, data


@contextmanager
def timed(phase: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    logger.info("%s took %.3f s", phase, time.perf_counter() - start)


def _input_dim(data: Any) -> int:
    dim = getattr(data, "input_dim", None)
    if dim is None:
        raise ValueError(
            "The default MLP needs the data's input size: pass a data module with input_dim "
            "and num_classes, or pass a model"
        )
    return int(np.prod(dim))


def _num_classes(data: Any) -> int:
    classes = getattr(data, "num_classes", None)
    if classes is None:
        raise ValueError("The default MLP needs data.num_classes, or pass a model")
    return int(classes)


def _is_2d_classifier(data: Any) -> bool:
    return getattr(data, "input_dim", None) == 2 and getattr(data, "num_classes", None) is not None


def with_final_weights(model: nn.Module, trajectory: Trajectory) -> nn.Module:
    """A copy of ``model`` with the trajectory's final weights and buffers (BatchNorm statistics);
    the caller's model is untouched."""
    trained = copy.deepcopy(model).cpu()
    state = trajectory.state_dict()
    state.update({k: torch.from_numpy(np.array(v)) for k, v in trajectory.buffers.items()})
    trained.load_state_dict(state, strict=False)
    return trained


def _load_run(model: nn.Module, ckpt: Path, trajectory_file: Path) -> tuple[Trajectory, nn.Module]:
    trained = load_weights(model, ckpt)
    if not trajectory_file.is_file():
        raise FileNotFoundError(
            f"load_model=True needs the trajectory saved beside the weights, but "
            f"{str(trajectory_file)!r} does not exist; run once with load_model=False"
        )
    trajectory = Trajectory.load(trajectory_file)
    try:
        trajectory.layout.check_model(model)
    except IncompatibleFileError as exc:
        raise IncompatibleFileError(
            f"The trajectory {str(trajectory_file)!r} belongs to another model: {exc}"
        ) from None
    return trajectory, trained


def frame_losses(
    model: nn.Module,
    data: Any,
    trajectory: Trajectory,
    plane: Any,
    frames: np.ndarray,
    device: torch.device,
    n_examples: int | None,
) -> PathLosses:
    true = np.full(len(trajectory), np.nan)
    projected = np.full(len(trajectory), np.nan)
    true[frames], projected[frames] = path_losses(
        model, data, trajectory, plane, frames, device=device, n_examples=n_examples
    )
    return PathLosses(true, projected)
