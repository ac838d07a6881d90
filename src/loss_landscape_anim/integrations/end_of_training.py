"""What a trainer's callback does when training ends, for Lightning's and Hugging Face's alike:
the plane of the recorded path, the loss grid around the final weights, the animation, and the
results for the trainer's loggers.

The options are checked when the callback is made (:meth:`EndOfTraining.of`), so a bad output path
or resolution is refused before hours of training, not after.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from .._io import check_output_path
from .._validate import check_choice, check_optional_positive_int, check_positive_int
from ..directions import METHODS
from ..results import LossGrid, Plane, Trajectory

if TYPE_CHECKING:
    from ..render import Animation

__all__ = ["DEFAULT_CALLBACK_EXAMPLES", "DEFAULT_CALLBACK_RESOLUTION", "EndOfTraining", "Landscape"]

#: Grid points per axis of the landscape a callback computes when training ends (its points
#: cost a forward pass over the evaluation examples each: a trainer's model is seldom small).
DEFAULT_CALLBACK_RESOLUTION = 25
#: Examples of the evaluation data the landscape is computed on, by default: the first ones.
DEFAULT_CALLBACK_EXAMPLES = 256


@dataclass(frozen=True)
class Landscape:
    """What :meth:`EndOfTraining.compute` made: the plane, the grid and the animation (written
    to the output file, or held in memory to log)."""

    plane: Plane
    grid: LossGrid
    animation: Animation

    def results(self, trajectory: Trajectory) -> dict[str, Any]:
        """The keyword arguments of :func:`~loss_landscape_anim.log_tensorboard` and
        :func:`~loss_landscape_anim.log_wandb`."""
        return {
            "animation": self.animation,
            "grid": self.grid,
            "plane": self.plane,
            "trajectory": trajectory,
        }


@dataclass(frozen=True)
class EndOfTraining:
    """What a callback makes when training ends: the animation written to ``output`` (``.gif``,
    ``.mp4``, ``.html``), and with ``log`` the landscape logged to the trainer's loggers; nothing
    when neither is asked. The grid has ``resolution`` points per axis over a plane of ``method``
    (``"pca"``, ``"random"``, ``"filter"``; ``seed`` for the random ones), evaluated on the first
    ``n_examples`` examples (None: all) of ``data`` (None: the trainer's own)."""

    output: Path | None = None
    log: bool = False
    data: Any = None
    resolution: int = DEFAULT_CALLBACK_RESOLUTION
    n_examples: int | None = DEFAULT_CALLBACK_EXAMPLES
    method: str = "pca"
    seed: int = 0

    @classmethod
    def of(
        cls,
        output: str | os.PathLike | None,
        log: Any,
        data: Any,
        resolution: Any,
        n_examples: Any,
        method: Any,
    ) -> EndOfTraining:
        """The options, checked: a writable output of a known format, a flag, a resolution >= 2,
        a positive number of examples, a method that needs no model of its own."""
        if output is not None:
            from ..render.writers import format_for

            format_for(output, name="output")
            output = check_output_path(output, "output")
        if not isinstance(log, bool):
            raise TypeError(f"Expected log to be True or False but got {log!r}")
        if check_positive_int(resolution, "resolution") < 2:
            raise ValueError(f"Expected resolution to be an integer >= 2 but got {resolution!r}")
        choices = tuple(m for m in METHODS if m not in ("hessian", "custom"))
        return cls(
            output=output,
            log=log,
            data=data,
            resolution=int(resolution),
            n_examples=check_optional_positive_int(n_examples, "n_examples"),
            method=check_choice(method, "method", choices),
        )

    @property
    def wanted(self) -> bool:
        """Whether anything is to be made when training ends."""
        return self.output is not None or self.log

    def compute(self, trajectory: Trajectory, model: nn.Module, data: Any) -> Landscape:
        """The landscape of ``trajectory`` around ``model``'s weights (the final ones), on
        ``data`` unless the options name data of their own; evaluated on the model's device, in
        this process alone (a callback runs it on rank zero only). The rows that no training step
        measured (the final weights) are shown with their loss over the same data. Rendering is
        imported here, so that a callback that makes no landscape does not import matplotlib."""
        from ..analysis import compute_loss_grid, fill_losses
        from ..directions import project
        from ..evaluate import LossEvaluator
        from ..render import animate

        plane = project(trajectory, self.method, seed=self.seed)
        evaluator = LossEvaluator(
            model,
            self.data if self.data is not None else data,
            n_examples=self.n_examples,
            device=next(model.parameters()).device,
            distributed=False,
        )
        grid = compute_loss_grid(
            plane=plane, resolution=self.resolution, progress=False, evaluator=evaluator
        )
        animation = animate(
            fill_losses(trajectory, evaluator=evaluator),
            plane,
            grid,
            self.output,
            format=None if self.output is not None else "gif",
            progress=False,
        )
        return Landscape(plane, grid, animation)
