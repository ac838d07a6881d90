"""Recording a training run: the row rules in one public recorder, :func:`train` (our own loop),
and optimizers by name."""

from .recorder import TrajectoryRecorder
from .training import train

__all__ = ["TrajectoryRecorder", "train"]
