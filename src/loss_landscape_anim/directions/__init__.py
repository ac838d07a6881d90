"""Directions that span the plane of the picture: PCA of the path, random, filter-normalised
random (Li et al. 2018), or the caller's own; :func:`project` puts a trajectory on that plane."""

from .custom import check_directions
from .projection import METHODS, fit_plane, project

__all__ = ["METHODS", "check_directions", "fit_plane", "project"]
