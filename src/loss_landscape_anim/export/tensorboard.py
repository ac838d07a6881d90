"""``log_tensorboard``: the animation, the landscape figure and the surface in TensorBoard.

The animation is logged as the summary ``add_video`` writes (an image summary holding an animated
GIF, which TensorBoard's Images tab plays), but with the GIF our renderer already made:
``SummaryWriter.add_video`` re-encodes frames through moviepy (and moviepy 2 no longer has the
``moviepy.editor`` module it imports), so it is not used and moviepy is not needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..render.animation import Animation
from ..results import LossGrid, Plane, Trajectory
from ._deps import require
from ._inputs import check_inputs, figure_and_mesh

__all__ = ["log_tensorboard"]


def log_tensorboard(
    writer: Any,
    *,
    animation: Animation | None = None,
    grid: LossGrid | None = None,
    plane: Plane | None = None,
    trajectory: Trajectory | None = None,
    step: int | None = 0,
    tag: str = "loss_landscape",
    log: bool = False,
) -> list[str]:
    """Log the loss landscape to TensorBoard through ``writer`` (a
    ``torch.utils.tensorboard.SummaryWriter``, a ``tensorboardX.SummaryWriter``, or the
    ``experiment`` of Lightning's ``TensorBoardLogger``).

    What is logged, at ``step``, under ``tag``:

    - ``{tag}/animation``: ``animation`` (a GIF :class:`Animation`, e.g. from
      ``animate(..., None, format="gif")``) as a video summary: TensorBoard's Images tab plays it.
    - ``{tag}/landscape``: the :func:`plot_landscape` figure of ``grid`` (with the path of
      ``plane``, or of ``trajectory`` projected onto it) as an image.
    - ``{tag}/surface``: the surface of ``grid`` as a mesh (Mesh tab): a vertex per finite grid
      point at height loss (log10 loss with ``log``), two triangles per grid cell, coloured by
      loss as in the animation (left out when no loss is finite).

    Args:
        writer: the summary writer.
        animation: the animation to log (GIF), or None.
        grid: the loss grid to log as a figure and a mesh, or None.
        plane, trajectory: the path drawn on the figure (need ``grid``).
        step: the global step the summaries belong to (>= 0; None: none).
        tag: the prefix of the tags.
        log: mesh heights are log10(loss).

    Returns:
        The tags written.
    """
    check_inputs(animation, grid, plane, trajectory, step, tag)
    if not callable(getattr(writer, "add_image", None)) or not callable(
        getattr(writer, "_get_file_writer", None)
    ):
        raise TypeError(
            "Expected writer to be a SummaryWriter (torch.utils.tensorboard or tensorboardX) "
            f"but got {type(writer).__name__}"
        )
    tags = []
    if animation is not None:
        tags.append(_log_animation(writer, animation, f"{tag}/animation", step))
    if grid is not None:
        image, mesh = figure_and_mesh(grid, plane, trajectory, log)
        writer.add_image(f"{tag}/landscape", image, step, dataformats="HWC")
        tags.append(f"{tag}/landscape")
        if mesh is not None:
            points, triangles, colors = mesh
            writer.add_mesh(
                f"{tag}/surface",
                vertices=points[None].astype(np.float32),
                colors=colors[None],
                faces=triangles[None].astype(np.int32),
                global_step=step,
            )
            tags.append(f"{tag}/surface")
    writer.flush()
    return tags


def _log_animation(writer: Any, animation: Animation, tag: str, step: int | None) -> str:
    """The GIF of ``animation`` as an image summary, the summary ``add_video`` writes."""
    if animation.format != "gif":
        raise ValueError(
            f"Expected a GIF animation for TensorBoard (its Images tab plays GIFs) but got "
            f"format {animation.format!r}: render one with animate(..., None, format='gif')"
        )
    summary_pb2 = require("tensorboard.compat.proto.summary_pb2", "Logging to TensorBoard")
    Summary = summary_pb2.Summary
    width, height = animation.size
    image = Summary.Image(
        height=height, width=width, colorspace=3, encoded_image_string=animation.read_bytes()
    )
    summary = Summary(value=[Summary.Value(tag=tag, image=image)])
    writer._get_file_writer().add_summary(summary, step)
    return tag
