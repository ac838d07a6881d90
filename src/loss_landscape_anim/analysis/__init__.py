"""Analyses of a trained path: the loss grid of a plane, the losses along the path, the decision
regions of a 2-input classifier. Thin users of :mod:`loss_landscape_anim.evaluate`."""

from .decision_regions import decision_regions
from .fill_losses import fill_losses
from .loss_grid import DEFAULT_MARGIN, DEFAULT_RESOLUTION, compute_loss_grid, grid_axes
from .path_losses import path_losses

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_RESOLUTION",
    "compute_loss_grid",
    "decision_regions",
    "fill_losses",
    "grid_axes",
    "path_losses",
]
