"""Validated option objects shared by the one-call API and the optimizer comparison: every
argument is checked here, before any training or any file is written, and every default lives here
once."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._io import check_output_path
from .._runtime import NumThreads, check_num_threads, check_seed, resolve_device
from .._validate import check_choice, check_optional_positive_int
from ..analysis.loss_grid import DEFAULT_MARGIN, DEFAULT_RESOLUTION, check_grid_arguments
from ..directions import METHODS
from ..evaluate import STRATEGIES
from ..evaluate.precision import PRECISIONS, check_precision
from ..render import DEFAULT_FPS, DEFAULT_FRAMES, VIEWS, Style
from ..render.writers import check_fps, format_for

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_FRAMES",
    "DEFAULT_MARGIN",
    "DEFAULT_RESOLUTION",
    "Extras",
    "GridOptions",
    "PlaneOptions",
    "RenderOptions",
    "RunOptions",
    "check_extras",
    "check_method",
    "check_sharpness",
]


@dataclass(frozen=True)
class GridOptions:
    """How the loss grid is computed: ``resolution`` points per axis (>= 2), ``margin`` room
    around the path(s) as a share of their extent, the first ``n_examples`` examples (None: all),
    the evaluation ``strategy`` and ``precision`` (None, ``"bf16"`` or ``"fp16"``)."""

    resolution: int = DEFAULT_RESOLUTION
    margin: float = DEFAULT_MARGIN
    n_examples: int | None = None
    strategy: str = "auto"
    precision: str | None = None

    def __post_init__(self) -> None:
        resolution, margin = check_grid_arguments(self.resolution, self.margin)
        object.__setattr__(self, "resolution", resolution)
        object.__setattr__(self, "margin", margin)
        object.__setattr__(
            self, "n_examples", check_optional_positive_int(self.n_examples, "n_examples")
        )
        object.__setattr__(
            self, "strategy", check_choice(self.strategy, "strategy", ("auto", *STRATEGIES))
        )
        if self.precision is not None:
            precision = check_choice(self.precision, "precision", tuple(PRECISIONS))
            object.__setattr__(self, "precision", precision)

    def check_model(self, model: torch.nn.Module, device: torch.device) -> None:
        """Refuse, before any work, a ``precision`` the device or the model's dtype cannot take."""
        dtype = next(model.parameters()).dtype
        check_precision(self.precision, device, dtype)

    def evaluator_options(self) -> dict[str, Any]:
        """The grid's own options of a :class:`~loss_landscape_anim.LossEvaluator`."""
        return {"strategy": self.strategy, "precision": self.precision}


@dataclass(frozen=True)
class RenderOptions:
    """How the animation is written: to ``output`` (None: to memory) in ``format``, at ``fps``
    frames per second, with at most ``n_frames`` frames (None: one per recorded row)."""

    output: Path | None
    format: str
    fps: int = DEFAULT_FPS
    n_frames: int | None = DEFAULT_FRAMES
    style: Style | None = None
    view: str = "contour"

    @classmethod
    def of(
        cls,
        output: str | os.PathLike | None,
        *,
        fps: Any = DEFAULT_FPS,
        n_frames: Any = DEFAULT_FRAMES,
        style: Any = None,
        format: str | None = None,
        view: Any = "contour",
    ) -> RenderOptions:
        if style is not None and not isinstance(style, Style):
            raise TypeError(f"Expected style to be a Style or None but got {type(style).__name__}")
        fmt = format_for(output, format, "output_filename")
        return cls(
            output=check_output_path(output, "output_filename") if output is not None else None,
            format=fmt,
            fps=check_fps(fps, fmt, "giffps"),
            n_frames=check_optional_positive_int(n_frames, "n_frames"),
            style=style,
            view=check_choice(view, "view", VIEWS),
        )


@dataclass(frozen=True)
class RunOptions:
    """Where and how the stages run: ``device``, ``seed`` (None: unseeded), progress bars, and
    CPU threads (``"auto"``: one thread for small work; the pipeline owns the process, so it opts
    in)."""

    device: torch.device
    seed: int | None = None
    progress: bool = True
    num_threads: NumThreads = "auto"

    @classmethod
    def of(
        cls,
        *,
        device: Any = None,
        gpus: Any = 0,
        seed: Any = None,
        progress: bool = True,
        num_threads: Any = "auto",
    ) -> RunOptions:
        return cls(
            resolve_device(device, gpus),
            check_seed(seed),
            bool(progress),
            check_num_threads(num_threads),
        )

    def preparation_options(self, grid: GridOptions) -> dict[str, Any]:
        """The options of the run's :class:`~loss_landscape_anim.evaluate.Preparation`."""
        return {
            "device": self.device,
            "n_examples": grid.n_examples,
            "num_threads": self.num_threads,
        }


@dataclass(frozen=True)
class PlaneOptions:
    """How the plane is made: ``method`` (one of the ``reduction_method`` names) and, for
    ``"custom"``, the two ``directions``."""

    method: str = "pca"
    directions: Any = None

    @classmethod
    def of(
        cls, reduction_method: Any, custom_directions: Any, model: torch.nn.Module
    ) -> PlaneOptions:
        """Checked before training: the method, and directions that fit it and the model."""
        from ..directions import check_directions
        from ..params.layout import ParamLayout

        method = check_method(reduction_method)
        if method == "custom":
            check_directions(custom_directions, ParamLayout.of(model).n_params)
        elif custom_directions is not None:
            raise ValueError(
                f"custom_directions were given but reduction_method is {method!r}; "
                "use reduction_method='custom' to use them"
            )
        return cls(method, custom_directions)


@dataclass(frozen=True)
class Extras:
    """What a run computes beside the grid and the animation: the true and projected loss of
    each frame (``show_path_losses``), the decision regions, the curvature panel and map, the
    figure of the loss on the line from the initial to the final weights (``line_output``), the
    interactive surface (``interactive_output``), the files the grid is exported to
    (``exports``: meshes, HDF5), a TensorBoard folder to log to (``tensorboard``), the epochs to
    train a curve between each pair of paths' final weights (``connectivity``; None: none), the
    spectral density (``density``: in the curvature panel and beside the output) and the
    sharpness radius (``sharpness``: None for none) of the final weights."""

    show_path_losses: bool = True
    decision_regions: bool = False
    curvature: bool = False
    line_output: Path | None = None
    interactive_output: Path | None = None
    exports: tuple[Path, ...] = ()
    tensorboard: Path | None = None
    connectivity: int | None = None
    density: bool = False
    sharpness: float | None = None


def check_extras(
    curvature: Any,
    line_output: Any,
    interactive_output: Any,
    export: Any = None,
    tensorboard: Any = None,
    *,
    density: Any = False,
    sharpness: Any = None,
) -> Extras:
    """The curvature flag and the extra outputs, checked before any work: the output paths can
    be written, and the packages they need are installed."""
    from .exports import check_exports

    for name, flag in (("curvature", curvature), ("density", density)):
        if not isinstance(flag, bool):
            raise ValueError(f"Expected {name} to be True or False but got {flag!r}")
    if interactive_output is not None:
        from ..render.interactive import check_plotly

        check_plotly()
        interactive_output = check_output_path(interactive_output, "interactive_output")
    if line_output is not None:
        line_output = check_output_path(line_output, "line_output")
    exports, folder = check_exports(export, tensorboard)
    return Extras(
        curvature=curvature,
        line_output=line_output,
        interactive_output=interactive_output,
        exports=tuple(exports),
        tensorboard=folder,
        density=density,
        sharpness=check_sharpness(sharpness),
    )


def check_sharpness(rho: Any) -> float | None:
    """``rho``: None or the radius (> 0) of the sharpness measures."""
    if rho is None:
        return None
    if (
        isinstance(rho, bool)
        or not isinstance(rho, int | float)
        or not math.isfinite(rho)
        or rho <= 0
    ):
        raise ValueError(f"Expected sharpness to be None or a radius > 0 but got {rho!r}")
    return float(rho)


def check_method(reduction_method: Any) -> str:
    """``reduction_method`` lower-cased, if it is one of :data:`METHODS`."""
    return check_choice(reduction_method, "reduction_method", METHODS)
