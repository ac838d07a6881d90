"""``log_wandb``: the animation, the landscape figure and the surface in a Weights & Biases run.

The animation goes in as the file our renderer wrote (GIF or MP4 bytes): ``wandb.Video`` encodes
arrays of frames through moviepy, but takes a finished file as it is, so moviepy is not needed.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from ..render.animation import Animation
from ..results import LossGrid, Plane, Trajectory
from ._deps import require
from ._inputs import check_inputs

__all__ = ["log_wandb"]


def log_wandb(
    run: Any,
    *,
    animation: Animation | None = None,
    grid: LossGrid | None = None,
    plane: Plane | None = None,
    trajectory: Trajectory | None = None,
    step: int | None = None,
    tag: str = "loss_landscape",
    log: bool = True,
) -> list[str]:
    """Log the loss landscape to a Weights & Biases run (``wandb.init(...)``, or the
    ``experiment`` of Lightning's ``WandbLogger``), in one ``run.log`` call.

    What is logged, under ``tag``:

    - ``{tag}/animation``: ``animation`` (GIF or MP4) as a ``wandb.Video``.
    - ``{tag}/landscape``: the :func:`plot_landscape` figure of ``grid`` (with the path of
      ``plane``, or of ``trajectory`` projected onto it) as a ``wandb.Image``.
    - ``{tag}/surface``: :func:`interactive_surface` of the same, a rotatable Plotly figure
      (``wandb.Plotly``; needs plotly), when the grid has at least two distinct finite losses.

    Args:
        run: the W&B run.
        animation: the animation to log, or None.
        grid: the loss grid to log as a figure and a surface, or None.
        plane, trajectory: the path drawn on the figures (need ``grid``).
        step: the run's step to log at (None: the run's current step).
        tag: the prefix of the keys.
        log: the Plotly surface's height and colours on a log scale.

    Returns:
        The keys logged.
    """
    check_inputs(animation, grid, plane, trajectory, step, tag)
    if not callable(getattr(run, "log", None)):
        raise TypeError(f"Expected run to be a wandb Run but got {type(run).__name__}")
    wandb = require("wandb", "Logging to Weights & Biases")
    payload: dict[str, Any] = {}
    if animation is not None:
        if animation.format not in ("gif", "mp4"):
            raise ValueError(
                f"Expected a GIF or MP4 animation for W&B but got format {animation.format!r}"
            )
        video = io.BytesIO(animation.read_bytes())
        payload[f"{tag}/animation"] = wandb.Video(video, format=animation.format)
    if grid is not None:
        from ..render.images import landscape_image

        image = landscape_image(grid, plane=plane, trajectory=trajectory)
        payload[f"{tag}/landscape"] = wandb.Image(image)
        if np.unique(grid.loss[np.isfinite(grid.loss)]).size >= 2:
            require("plotly", "Logging the surface to Weights & Biases")
            from ..render.interactive import interactive_surface

            figure = interactive_surface(grid, plane=plane, trajectory=trajectory, log=log)
            payload[f"{tag}/surface"] = wandb.Plotly(figure)
    run.log(payload, step=step)
    return list(payload)
