"""The pipeline: the one-call API with the seed package's signature and the optimizer comparison,
both the same core (:mod:`.core`) on validated options. Only the CLI (and the package's public
names) import this; what the CLI needs is exported here."""

from ..directions import METHODS
from ..evaluate.ranks import launched_group
from ..optimizers import OPTIMIZERS
from ..render.writers import MAX_GIF_FPS, check_fps, format_for
from .compare import Comparison, compare_optimizers
from .exports import SURFACE_FRAMES, animate_surface_file, check_exports, write_exports
from .line_figure import interactive_path, line_path
from .one_call import loss_landscape_anim
from .options import DEFAULT_FPS, DEFAULT_FRAMES, DEFAULT_MARGIN, DEFAULT_RESOLUTION
from .stages import mnist_job, tiny_gpt_job

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_FRAMES",
    "DEFAULT_MARGIN",
    "DEFAULT_RESOLUTION",
    "MAX_GIF_FPS",
    "METHODS",
    "OPTIMIZERS",
    "SURFACE_FRAMES",
    "Comparison",
    "animate_surface_file",
    "check_exports",
    "check_fps",
    "compare_optimizers",
    "format_for",
    "interactive_path",
    "launched_group",
    "line_path",
    "loss_landscape_anim",
    "mnist_job",
    "tiny_gpt_job",
    "write_exports",
]
