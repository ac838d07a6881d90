"""The pipeline steps the one-call API and the optimizer comparison share: the default model and
data, the trained copy of the model, and the grid, path losses and rendering with options applied."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import seeded
from ..analysis import compute_loss_grid, path_losses
from ..data import SpiralsDataModule
from ..models import MLP
from ..render import Animation, Style, animate
from ..results import LossGrid, PathLosses, Plane, Trajectory
from .options import GridOptions, RenderOptions, RunOptions

__all__ = [
    "build_default_model",
    "evaluate_grid",
    "frame_path_losses",
    "render",
    "timed",
    "with_final_weights",
]

logger = logging.getLogger(__name__)

#: The default MLP's learning rate.
DEFAULT_MLP_LEARNING_RATE = 5e-3


@contextmanager
def timed(phase: str) -> Iterator[None]:
    """Log how long the block took, as ``"<phase> took N s"`` at INFO level."""
    start = time.perf_counter()
    yield
    logger.info("%s took %.3f s", phase, time.perf_counter() - start)


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
            lr = DEFAULT_MLP_LEARNING_RATE if learning_rate is None else learning_rate
            model = MLP(_input_dim(data), _num_classes(data), lr, optimizer=optimizer)
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected model to be a torch.nn.Module but got {type(model).__name__}")
    return model, data


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


def is_2d_classifier(data: Any) -> bool:
    """True for data that declare 2-D inputs and a number of classes (decision regions apply)."""
    return getattr(data, "input_dim", None) == 2 and getattr(data, "num_classes", None) is not None


def with_final_weights(model: nn.Module, trajectory: Trajectory) -> nn.Module:
    """A copy of ``model`` with the trajectory's final weights and buffers (BatchNorm statistics);
    the caller's model is untouched."""
    trained = copy.deepcopy(model).cpu()
    state = trajectory.state_dict()
    state.update({k: torch.from_numpy(np.array(v)) for k, v in trajectory.buffers.items()})
    trained.load_state_dict(state, strict=False)
    return trained


def evaluate_grid(
    trained: nn.Module,
    data: Any,
    plane: Plane,
    grid: GridOptions,
    run: RunOptions,
    extra_paths: list[np.ndarray] | None = None,
) -> LossGrid:
    """:func:`compute_loss_grid` with the options applied."""
    with timed("loss grid"):
        return compute_loss_grid(
            trained,
            data,
            plane,
            resolution=grid.resolution,
            margin=grid.margin,
            device=run.device,
            n_examples=grid.n_examples,
            num_threads=run.num_threads,
            extra_paths=extra_paths,
            strategy=grid.strategy,
            progress=run.progress,
        )


def frame_path_losses(
    trained: nn.Module,
    data: Any,
    trajectory: Trajectory,
    plane: Plane,
    frames: np.ndarray,
    grid: GridOptions,
    run: RunOptions,
) -> PathLosses:
    """:func:`path_losses` of the rows shown as frames, with the options applied."""
    with timed("path losses"):
        return path_losses(
            trained,
            data,
            trajectory,
            plane,
            frames,
            device=run.device,
            n_examples=grid.n_examples,
            num_threads=run.num_threads,
        )


def render(
    trajectories: Trajectory | Mapping[str, Trajectory],
    planes: Plane | Mapping[str, Plane],
    grid: LossGrid,
    options: RenderOptions,
    run: RunOptions,
    *,
    default_style: Style | None = None,
    **panels: Any,
) -> Animation:
    """:func:`animate` with the options applied (the user's style, else ``default_style``);
    ``panels`` are its optional panel inputs (``path_losses``, ``decision_regions``)."""
    with timed("rendering"):
        return animate(
            trajectories,
            planes,
            grid,
            options.output,
            fps=options.fps,
            n_frames=options.n_frames,
            format=options.format,
            style=options.style or default_style or Style(),
            progress=run.progress,
            view=options.view,
            **panels,
        )
