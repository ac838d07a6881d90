"""The result types every stage returns: immutable, numpy-only, saved to data-only ``.npz`` files.

Computing and drawing modules both import these; these import neither.
"""

from .curvature import CurvatureGrid, PathCurvature
from .curve import Curve
from .decision_regions import DecisionRegions
from .density import HessianDensity
from .hessian import HessianSpectrum, HessianTrace
from .loss_grid import LossGrid
from .loss_line import LossLine
from .path_losses import PathLosses
from .plane import Plane
from .sharpness import Sharpness
from .trajectory import Trajectory

__all__ = [
    "CurvatureGrid",
    "Curve",
    "DecisionRegions",
    "HessianDensity",
    "HessianSpectrum",
    "HessianTrace",
    "LossGrid",
    "LossLine",
    "PathCurvature",
    "PathLosses",
    "Plane",
    "Sharpness",
    "Trajectory",
]
