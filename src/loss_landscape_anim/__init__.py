"""Animate the optimizer's path over a 2D slice of a PyTorch model's loss landscape.

The pipeline has four stages, each a function returning an immutable, saveable result::

    trajectory = train(model, data, n_epochs)        # Trajectory
    plane = project(trajectory, "pca")               # Plane
    grid = compute_loss_grid(model, data, plane)     # LossGrid
    animate(trajectory, plane, grid, "sample.gif")   # Animation

``loss_landscape_anim(...)`` runs all four with the seed package's arguments.
"""

from .api import loss_landscape_anim
from .compare import Comparison, compare_optimizers
from .data import SpiralsDataModule
from .errors import DataError, DivergenceWarning, IncompatibleFileError, UnsafeFileError
from .grid import LossGrid, compute_loss_grid
from .mnist import MNISTDataModule
from .models import MLP, GenericModel, LeNet
from .projection import Plane, project
from .rendering import Animation, animate
from .training import train
from .trajectory import Trajectory

__version__ = "0.2.0"

__all__ = [
    "MLP",
    "Animation",
    "Comparison",
    "DataError",
    "DivergenceWarning",
    "GenericModel",
    "IncompatibleFileError",
    "LeNet",
    "LossGrid",
    "MNISTDataModule",
    "Plane",
    "SpiralsDataModule",
    "Trajectory",
    "UnsafeFileError",
    "animate",
    "compare_optimizers",
    "compute_loss_grid",
    "loss_landscape_anim",
    "project",
    "train",
]
