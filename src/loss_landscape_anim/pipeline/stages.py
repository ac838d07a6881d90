"""The pipeline steps around the core: the default model and data, whether to draw decision
regions, rendering with the options applied, and the phase timings logged at INFO."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
from torch import nn

from .._runtime import is_writer, seeded
from .._validate import check_model
from ..data import SpiralsDataModule
from ..data.checks import exposed_tensors
from ..models import MLP
from ..render import Animation, Style, animate
from ..results import LossGrid, Plane, Trajectory
from .options import RenderOptions, RunOptions

__all__ = [
    "build_default_model",
    "is_2d_classifier",
    "mnist_job",
    "render",
    "timed",
    "tiny_gpt_job",
    "wants_decision_regions",
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
    """The model and data to use: the given ones, else spirals and an MLP seeded by ``seed``.
    ``batch_size`` applies to the default data only: with a ``datamodule`` it is refused rather
    than ignored."""
    if datamodule is not None and batch_size is not None:
        raise ValueError(
            f"batch_size={batch_size!r} applies to the default spirals data only; with a "
            "datamodule, set the batch size of its loader instead"
        )
    data = datamodule if datamodule is not None else SpiralsDataModule(batch_size=batch_size)
    if model is not None:
        check_model(model)
    else:
        with seeded(seed):
            lr = DEFAULT_MLP_LEARNING_RATE if learning_rate is None else learning_rate
            model = MLP(_input_dim(data), _num_classes(data), lr, optimizer=optimizer)
    return model, data


def mnist_job(
    *,
    batch_size: int | None,
    n_examples: int,
    data_dir: Any,
    seed: int | None,
    learning_rate: float | None,
    optimizer: Any = "adam",
) -> tuple[Any, nn.Module]:
    """The built-in MNIST job: :class:`MNISTDataModule` (batches of 16 by default) and LeNet-5
    with initial weights seeded by ``seed``, like the default MLP's."""
    from ..data import MNISTDataModule
    from ..models import LeNet

    data = MNISTDataModule(batch_size=batch_size or 16, n_examples=n_examples, data_dir=data_dir)
    with seeded(seed):
        model = LeNet(learning_rate=learning_rate or 1e-3, optimizer=optimizer)
    return data, model


def tiny_gpt_job(
    *,
    batch_size: int | None,
    seed: int | None,
    learning_rate: float | None,
    optimizer: Any = "adam",
) -> tuple[Any, nn.Module]:
    """The built-in transformer job: :class:`SequenceDataModule` (the addition task, full batch
    by default) and :class:`TinyGPT` with initial weights seeded by ``seed``."""
    from ..data import SequenceDataModule
    from ..models import TinyGPT

    data = SequenceDataModule(batch_size=batch_size)
    with seeded(seed):
        model = TinyGPT(learning_rate=learning_rate or 3e-3, optimizer=optimizer)
    return data, model


def wants_decision_regions(decision_regions: Any, data: Any) -> bool:
    """Whether to draw decision regions: ``decision_regions``, or by default when the data are a
    2-input classifier's. Refuses ``True`` on data that visibly are not (inputs not (N, 2),
    float targets), before training."""
    if decision_regions is None:
        return is_2d_classifier(data)
    if not isinstance(decision_regions, (bool, np.bool_)):
        raise TypeError(
            f"Expected decision_regions to be True, False or None but got {decision_regions!r}"
        )
    if not decision_regions:
        return False
    tensors = exposed_tensors(data)
    declared = getattr(data, "input_dim", None)
    shape = tuple(tensors[0].shape[1:]) if tensors is not None else None
    if shape is None and declared is not None:
        shape = tuple(np.atleast_1d(declared).tolist())
    if shape is not None and shape != (2,):
        raise ValueError(
            "decision_regions=True needs 2-D inputs (a 2-input classifier) but the data's "
            f"inputs have shape {shape} per example"
        )
    if tensors is not None and tensors[1].is_floating_point():
        raise ValueError(
            "decision_regions=True needs class labels but the data's targets are floating "
            f"point ({tensors[1].dtype})"
        )
    return True


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


def render(
    trajectories: Trajectory | Mapping[str, Trajectory],
    planes: Plane | Mapping[str, Plane],
    grid: LossGrid,
    options: RenderOptions,
    run: RunOptions,
    *,
    default_style: Style | None = None,
    **panels: Any,
) -> Animation | None:
    """:func:`animate` with the options applied (the user's style, else ``default_style``);
    ``panels`` are its optional panel inputs (``path_losses``, ``decision_regions``). None on
    the ranks other than 0 of a ``torch.distributed`` job: rank 0 renders and writes."""
    if not is_writer():
        return None
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
