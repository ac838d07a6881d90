"""Animate the optimizer's path over a 2D slice of a PyTorch model's loss landscape.

The pipeline has four stages, each a function returning an immutable, saveable result::

    trajectory = train(model, data, n_epochs)        # Trajectory
    plane = project(trajectory, "pca")               # Plane
    grid = compute_loss_grid(model, data, plane)     # LossGrid
    animate(trajectory, plane, grid, "sample.gif")   # Animation

``loss_landscape_anim(...)`` runs all four with the seed package's arguments.
"""

from .analysis import compute_loss_grid, decision_regions, loss_along_line, path_losses
from .data import MNISTDataModule, SpiralsDataModule
from .directions import project
from .errors import DataError, DivergenceWarning, IncompatibleFileError, UnsafeFileError
from .evaluate import LossEvaluator
from .models import MLP, GenericModel, LeNet
from .pipeline import Comparison, compare_optimizers, loss_landscape_anim
from .record import TrajectoryRecorder, train
from .render import (
    Animation,
    Style,
    animate,
    interactive_surface,
    plot_landscape,
    plot_loss_line,
)
from .results import DecisionRegions, LossGrid, LossLine, PathLosses, Plane, Trajectory

__version__ = "0.2.0"

__all__ = [
    "MLP",
    "Animation",
    "Comparison",
    "DataError",
    "DecisionRegions",
    "DivergenceWarning",
    "GenericModel",
    "IncompatibleFileError",
    "LeNet",
    "LossEvaluator",
    "LossGrid",
    "LossLine",
    "MNISTDataModule",
    "PathLosses",
    "Plane",
    "SpiralsDataModule",
    "Style",
    "Trajectory",
    "TrajectoryRecorder",
    "UnsafeFileError",
    "animate",
    "compare_optimizers",
    "compute_loss_grid",
    "decision_regions",
    "interactive_surface",
    "loss_along_line",
    "loss_landscape_anim",
    "path_losses",
    "plot_landscape",
    "plot_loss_line",
    "project",
    "train",
]
