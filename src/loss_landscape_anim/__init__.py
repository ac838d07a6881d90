"""Animate the optimizer's path over a 2D slice of a PyTorch model's loss landscape.

The pipeline has four stages, each a function returning an immutable, saveable result:

>>> from loss_landscape_anim import MLP, SpiralsDataModule, animate, compute_loss_grid, project, train
>>> data = SpiralsDataModule()
>>> model = MLP(input_dim=2, num_classes=3)
>>> trajectory = train(model, data, n_epochs=5, seed=0, progress=False)
>>> len(trajectory), trajectory.n_params  # the initial weights and 5 steps, of 303 parameters
(6, 303)
>>> plane = project(trajectory, "pca")
>>> plane.path_2d.shape
(6, 2)
>>> grid = compute_loss_grid(model, data, plane, resolution=5, progress=False)
>>> grid.loss.shape
(5, 5)
>>> animation = animate(trajectory, plane, grid, None, format="gif", progress=False)
>>> animation.n_frames, animation.data[:6]
(6, b'GIF89a')

``loss_landscape_anim(...)`` runs all four with the seed package's arguments.
"""

from .analysis import (
    align,
    compute_loss_grid,
    connect,
    curvature_along_path,
    curvature_grid,
    decision_regions,
    fill_losses,
    hessian_density,
    hessian_eigenvalues,
    hessian_trace,
    loss_along_curve,
    loss_along_line,
    path_losses,
    sharpness,
)
from .data import MNISTDataModule, SequenceDataModule, SpiralsDataModule
from .directions import project
from .errors import (
    ConvergenceError,
    DataError,
    DivergenceWarning,
    IncompatibleFileError,
    UnsafeFileError,
)
from .evaluate import CurvatureEvaluator, LossEvaluator, Preparation
from .export import export_surface, log_tensorboard, log_wandb
from .models import MLP, GenericModel, LeNet, TinyGPT
from .pipeline import Comparison, compare_optimizers, loss_landscape_anim
from .record import TrajectoryRecorder, record_training, train
from .render import (
    Animation,
    Style,
    animate,
    animate_connectivity,
    interactive_surface,
    plot_connectivity,
    plot_curvature,
    plot_density,
    plot_landscape,
    plot_loss_line,
    plot_path_spectrum,
)
from .results import (
    CurvatureGrid,
    Curve,
    DecisionRegions,
    HessianDensity,
    HessianSpectrum,
    HessianTrace,
    LossGrid,
    LossLine,
    PathCurvature,
    PathLosses,
    Plane,
    Sharpness,
    Trajectory,
)

__version__ = "0.2.0"

__all__ = [
    "MLP",
    "Animation",
    "Comparison",
    "ConvergenceError",
    "CurvatureEvaluator",
    "CurvatureGrid",
    "Curve",
    "DataError",
    "DecisionRegions",
    "DivergenceWarning",
    "GenericModel",
    "HessianDensity",
    "HessianSpectrum",
    "HessianTrace",
    "IncompatibleFileError",
    "LeNet",
    "LossEvaluator",
    "LossGrid",
    "LossLine",
    "MNISTDataModule",
    "PathCurvature",
    "PathLosses",
    "Plane",
    "Preparation",
    "SequenceDataModule",
    "Sharpness",
    "SpiralsDataModule",
    "Style",
    "TinyGPT",
    "Trajectory",
    "TrajectoryRecorder",
    "UnsafeFileError",
    "align",
    "animate",
    "animate_connectivity",
    "compare_optimizers",
    "compute_loss_grid",
    "connect",
    "curvature_along_path",
    "curvature_grid",
    "decision_regions",
    "export_surface",
    "fill_losses",
    "hessian_density",
    "hessian_eigenvalues",
    "hessian_trace",
    "interactive_surface",
    "log_tensorboard",
    "log_wandb",
    "loss_along_curve",
    "loss_along_line",
    "loss_landscape_anim",
    "path_losses",
    "plot_connectivity",
    "plot_curvature",
    "plot_density",
    "plot_landscape",
    "plot_loss_line",
    "plot_path_spectrum",
    "project",
    "record_training",
    "sharpness",
    "train",
]
