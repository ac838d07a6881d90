"""Analyses of a trained path: the loss grid of a plane, the losses along the path, the loss along
a straight line between two weight vectors, the decision regions of a 2-input classifier. Thin
users of :mod:`loss_landscape_anim.evaluate`."""

from .decision_regions import decision_regions
from .loss_grid import DEFAULT_MARGIN, DEFAULT_RESOLUTION, compute_loss_grid, grid_axes
from .loss_line import loss_along_line
from .path_losses import path_losses

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_RESOLUTION",
    "compute_loss_grid",
    "decision_regions",
    "grid_axes",
    "loss_along_line",
    "path_losses",
]
