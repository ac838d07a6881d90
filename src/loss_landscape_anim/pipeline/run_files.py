"""The files of a run: the trained weights (a ``state_dict``) and the trajectory beside them, so a
later call can re-render without training (``load_model=True``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .._io import check_output_path
from .._runtime import is_writer
from ..errors import IncompatibleFileError
from ..params.weights import load_weights, save_weights
from ..results import Trajectory

__all__ = ["RunFiles"]


@dataclass(frozen=True)
class RunFiles:
    """``weights`` (``<dir>/<name>``) and ``trajectory`` (``<dir>/<stem>.trajectory.npz``)."""

    weights: Path
    trajectory: Path

    @classmethod
    def at(cls, dirpath: str | os.PathLike, filename: str | os.PathLike) -> RunFiles:
        """The files in folder ``dirpath``; refuses, before any work, paths where they cannot be
        written (a file where the folder should be, a folder where a file should be)."""
        for value, name in ((dirpath, "model_dirpath"), (filename, "model_filename")):
            if not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"Expected {name} to be a path but got {type(value).__name__}")
        folder = Path(dirpath)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"Expected model_dirpath to be a folder but {str(folder)!r} is a file")
        weights = check_output_path(folder / filename, "model_filename")
        trajectory = weights.with_name(weights.stem + ".trajectory.npz")
        return cls(weights, check_output_path(trajectory, "the trajectory file"))

    def save(self, trained: nn.Module, trajectory: Trajectory) -> None:
        """Write both files (on rank 0 only, in a ``torch.distributed`` job)."""
        if not is_writer():
            return
        save_weights(trained, self.weights)
        trajectory.save(self.trajectory)

    def load(self, model: nn.Module) -> tuple[Trajectory, nn.Module]:
        """The saved trajectory and a copy of ``model`` with the saved weights; errors name the
        missing or foreign file."""
        trained = load_weights(model, self.weights)
        if not self.trajectory.exists():
            raise FileNotFoundError(
                f"load_model=True needs the trajectory saved beside the weights, but "
                f"{str(self.trajectory)!r} does not exist; run once with load_model=False"
            )
        trajectory = Trajectory.load(self.trajectory)
        try:
            trajectory.layout.check_model(model)
        except IncompatibleFileError as exc:
            raise IncompatibleFileError(
                f"The trajectory {str(self.trajectory)!r} belongs to another model: {exc}"
            ) from None
        return trajectory, trained
