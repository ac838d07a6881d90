"""The files of a run: the trained weights (a ``state_dict``) and the trajectory beside them, so a
later call can re-render without training (``load_model=True``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..errors import IncompatibleFileError
from ..integrations.distributed import is_writer
from ..params.weights import load_weights, save_weights
from ..results import Trajectory

__all__ = ["RunFiles"]


@dataclass(frozen=True)
class RunFiles:
    """``weights`` (``<dir>/<name>``) and ``trajectory`` (``<dir>/<stem>.trajectory.npz``)."""

    weights: Path
    trajectory: Path

    @classmethod
    def at(cls, dirpath: str | os.PathLike, filename: str) -> RunFiles:
        weights = Path(dirpath) / filename
        return cls(weights, weights.with_name(weights.stem + ".trajectory.npz"))

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
        if not self.trajectory.is_file():
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
