"""The value types of drawing: ``Style`` (how it looks), ``PathView`` (what is drawn of one path)
and ``Curve`` (a side panel's curve that grows with the frames). A leaf: it imports nothing of the
package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Curve", "Drawn", "PathView", "Style"]


@dataclass(frozen=True)
class Style:
    """How the animation looks. Sizes in inches and points; colours as matplotlib colours."""

    figsize: tuple[float, float] = (9.0, 6.0)
    dpi: int = 100
    cmap: str = "viridis"
    contour_levels: int = 30
    contour_lines: bool = True
    path_colors: tuple[str, ...] = (
        "#ff7f0e",
        "#d62728",
        "#17becf",
        "#e377c2",
        "#bcbd22",
        "#8c564b",
    )
    path_width: float = 2.0
    point_size: float = 9.0
    minimum_color: str = "white"
    text_size: float = 9.0
    title: str | None = "Optimizer path on the loss landscape"
    panels: bool = True
    background: str = "white"


@dataclass(frozen=True)
class PathView:
    """What the renderer needs of one path."""

    name: str
    xy: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    steps: np.ndarray
    off_plane: np.ndarray
    true_loss: np.ndarray | None
    projected_loss: np.ndarray | None
    color: str


@dataclass(frozen=True, eq=False)
class Curve:
    """A curve of a side panel that grows with the frames: ``values`` at ``steps``, drawn in
    ``color`` with ``linestyle`` and ``width``. Panels return the curves they want animated; the
    figure draws them."""

    steps: np.ndarray
    values: np.ndarray
    color: str
    linestyle: str = "-"
    width: float = 1.5


@dataclass(frozen=True, eq=False)
class Drawn:
    """What a side panel drew that the figure animates: the ``curves`` to grow with the frames,
    other ``moving`` artists redrawn every frame, and ``updates``, called with the frame's step
    before each frame is drawn."""

    curves: list[Curve]
    moving: list[Any] = field(default_factory=list)
    updates: list[Callable[[float], None]] = field(default_factory=list)
