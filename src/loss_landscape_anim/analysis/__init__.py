"""Analyses of a trained path: the loss grid of a plane, the losses along the path, the loss along
a straight line between two weight vectors, the decision regions of a 2-input classifier, the
curvature (Hessian eigenvalues, trace, spectral density; Gauss-Newton and Fisher) at a point, over
a plane and along the path, sharpness, curves between two solutions and the permutation that
aligns one with the other. Thin users of :mod:`loss_landscape_anim.evaluate`."""

from .alignment import align
from .curvature import hessian_eigenvalues, hessian_trace
from .curvature_grid import DEFAULT_CURVATURE_RESOLUTION, curvature_grid
from .curve_losses import loss_along_curve
from .curves import connect
from .decision_regions import decision_regions
from .density import DEFAULT_DENSITY_RUNS, DEFAULT_DENSITY_STEPS, hessian_density
from .fill_losses import fill_losses
from .loss_grid import DEFAULT_MARGIN, DEFAULT_RESOLUTION, compute_loss_grid, grid_axes
from .loss_line import loss_along_line
from .path_curvature import curvature_along_path
from .path_losses import path_losses
from .sharpness import sharpness

__all__ = [
    "DEFAULT_CURVATURE_RESOLUTION",
    "DEFAULT_DENSITY_RUNS",
    "DEFAULT_DENSITY_STEPS",
    "DEFAULT_MARGIN",
    "DEFAULT_RESOLUTION",
    "align",
    "compute_loss_grid",
    "connect",
    "curvature_along_path",
    "curvature_grid",
    "decision_regions",
    "fill_losses",
    "grid_axes",
    "hessian_density",
    "hessian_eigenvalues",
    "hessian_trace",
    "loss_along_curve",
    "loss_along_line",
    "path_losses",
    "sharpness",
]
