"""Drawing: the value types (``Style``, ``PathView``), the animation figure, the writers, and
:func:`animate`. Knows the result types, never how they were computed."""

from .animation import Animation
from .animator import DEFAULT_FPS, DEFAULT_FRAMES, animate, frame_indices
from .connectivity import plot_connectivity
from .connectivity_animation import animate_connectivity
from .curvature import plot_curvature
from .density import plot_density
from .interactive import interactive_surface
from .landscape_plot import VIEWS, plot_landscape
from .loss_line_plot import plot_loss_line
from .spectrum import plot_path_spectrum
from .style import Style

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_FRAMES",
    "VIEWS",
    "Animation",
    "Style",
    "animate",
    "animate_connectivity",
    "frame_indices",
    "interactive_surface",
    "plot_connectivity",
    "plot_curvature",
    "plot_density",
    "plot_landscape",
    "plot_loss_line",
    "plot_path_spectrum",
]
