"""The result types every stage returns: immutable, numpy-only, saved to data-only ``.npz`` files.

Computing and drawing modules both import these; these import neither.
"""

from .decision_regions import DecisionRegions
from .loss_grid import LossGrid
from .loss_line import LossLine
from .path_losses import PathLosses
from .plane import Plane
from .trajectory import Trajectory

__all__ = ["DecisionRegions", "LossGrid", "LossLine", "PathLosses", "Plane", "Trajectory"]
