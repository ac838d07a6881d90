"""Recording a training run: the row rules in one public recorder, :func:`train` (our own loop),
:func:`record_training` (a loop of the user's own), and optimizers by name."""

from .loop import LoopRecorder, record_training
from .recorder import TrajectoryRecorder
from .training import train

__all__ = ["LoopRecorder", "TrajectoryRecorder", "record_training", "train"]
