"""Recording a training loop we did not write: :func:`record_training` hooks an optimizer's steps.

The loop stays the user's own; the optimizer's step hooks (``register_step_post_hook``) tell the
recorder when the weights change, and the loop reports the loss it measured before each step with
:meth:`LoopRecorder.report_loss`. The row rules are :class:`TrajectoryRecorder`'s: row t holds the
weights after ``steps[t]`` optimizer steps (row 0 the initial weights, the last row the final
ones), and a row's loss is the one measured on those weights, NaN where nothing measured them.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from .._validate import check_positive_int
from ..errors import DivergenceWarning
from ..optimizers import optimizer_summary
from ..params.store import DEFAULT_MEMORY_LIMIT
from ..results.trajectory import Trajectory
from .recorder import TrajectoryRecorder

__all__ = ["LoopRecorder", "record_training"]


class _Measurements:
    """The losses (and accuracies) reported for one step: summed lazily, so that reporting a
    tensor on a GPU does not wait for it."""

    def __init__(self) -> None:
        self.loss: Any = 0.0
        self.n_loss = 0
        self.accuracy: Any = 0.0
        self.n_accuracy = 0

    def add(self, loss: Any, accuracy: Any) -> None:
        self.loss = self.loss + _detached(loss)
        self.n_loss += 1
        if accuracy is not None:
            self.accuracy = self.accuracy + _detached(accuracy)
            self.n_accuracy += 1

    def means(self) -> tuple[float, float]:
        accuracy = float(self.accuracy) / self.n_accuracy if self.n_accuracy else math.nan
        return float(self.loss) / self.n_loss, accuracy


def _detached(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"Expected a scalar loss or accuracy but got a tensor of shape {tuple(value.shape)}"
            )
        return value.detach().reshape(()).double()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"Expected a loss or accuracy to be a number or a scalar tensor but got "
            f"{type(value).__name__}"
        )
    return float(value)


class LoopRecorder:
    """Rows of a model's weights at the steps of its optimizer (see :func:`record_training`).

    Attributes:
        step: optimizer steps taken since recording started.
        diverged: True once the weights stopped being finite (no rows are recorded after that).
    """

    def __init__(self, recorder: TrajectoryRecorder):
        self.recorder = recorder
        self.step = 0
        self.diverged = False
        self._measured: dict[int, _Measurements] = {}

    def start(self, step: int = 0) -> None:
        """Record the weights the model holds now as the first row, that of ``step``."""
        self.step = step
        self._record()

    def report_loss(self, loss: Any, accuracy: Any = None) -> None:
        """Report the loss (and accuracy in [0, 1]) the loop measured on the weights it holds now,
        that is, before its next optimizer step. A float or a scalar tensor (read only when the
        trajectory is made, so a GPU loop is not made to wait).

        Reports between the same two steps (micro-batches of gradient accumulation) are averaged.
        Reports for a step that is not recorded (``every`` > 1) are dropped: a loss belongs to the
        weights it was measured on, never to a neighbouring row."""
        if self.diverged or not self.recorder.steps or self.recorder.steps[-1] != self.step:
            _detached(loss)  # still checked
            return
        self._measured.setdefault(self.step, _Measurements()).add(loss, accuracy)

    def after_step(self) -> None:
        """Count one optimizer step and record the weights it produced when the step is due."""
        self.advance(self.step + 1)

    def advance(self, step: int) -> None:
        """The model now holds the weights after ``step`` optimizer steps (a trainer's step
        count): record them when the step is due."""
        if step <= self.step:
            return
        self.step = step
        if not self.diverged and self.recorder.due(self.step):
            self._record()

    def finish(self) -> None:
        """Record the final weights, if the last step was not recorded already."""
        if not self.diverged and self.recorder.steps and self.recorder.steps[-1] != self.step:
            self._record()

    def trajectory(self) -> Trajectory:
        """The recorded rows as a :class:`Trajectory`, with the reported losses; rows whose
        weights nothing measured have NaN loss (see :func:`~loss_landscape_anim.fill_losses`)."""
        self._settle()
        return self.recorder.trajectory(diverged=self.diverged)

    def state_dict(self) -> dict[str, Any]:
        """The rows so far as tensors and lists (what a trainer's checkpoint can hold)."""
        self._settle()
        rows = self.recorder.rows()
        return {
            "rows": torch.from_numpy(np.array(rows)),
            "steps": list(self.recorder.steps),
            "loss": list(self.recorder.loss),
            "accuracy": list(self.recorder.accuracy),
            "step": self.step,
            "diverged": self.diverged,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from rows saved by :meth:`state_dict` (into a recorder with no rows yet)."""
        if len(self.recorder):
            raise ValueError("Expected an empty recorder to restore saved rows into")
        for row, step, loss, accuracy in zip(
            state["rows"], state["steps"], state["loss"], state["accuracy"], strict=True
        ):
            self.recorder.record(step, loss, accuracy, weights=row)
        self.step = int(state["step"])
        self.diverged = bool(state["diverged"])

    def _settle(self) -> None:
        """Write the reported losses into their rows."""
        for step, measured in self._measured.items():
            self.recorder.set_measurement(step, *measured.means())

    def __len__(self) -> int:
        return len(self.recorder)

    def _record(self) -> None:
        if not self.recorder.record(self.step):
            self.diverged = True
            warnings.warn(
                f"The weights are not finite after step {self.step}; recording stops at the last "
                "finite weights. Try a smaller learning rate.",
                DivergenceWarning,
                stacklevel=4,
            )


@contextlib.contextmanager
def record_training(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    every: int = 1,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    spill_dir: str | os.PathLike | None = None,
) -> Iterator[LoopRecorder]:
    """Record the weights of ``model`` at the steps of ``optimizer`` in a training loop of your own.

    Row 0 is recorded on entering the block (the initial weights), then the weights after every
    ``every``-th optimizer step (steps ``every``, ``2 * every``, ...), and on leaving the block the
    final weights when their step was not recorded. Inside the loop, report the loss of the
    weights the model holds (measured before the step) with ``recording.report_loss(loss)``;
    rows nobody measured keep NaN, which :func:`~loss_landscape_anim.fill_losses` can replace by
    the loss over given data afterwards. The model, its mode and the optimizer are not changed;
    the hook is removed on leaving the block. Rows past ``memory_limit`` bytes spill to a
    temporary file in ``spill_dir``, as with :func:`~loss_landscape_anim.train`.

    Example::

        with record_training(model, optimizer) as recording:
            for x, y in loader:
                loss = F.cross_entropy(model(x), y)
                recording.report_loss(loss)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        trajectory = recording.trajectory()

    Args:
        model: the model being trained.
        optimizer: the ``torch.optim.Optimizer`` updating (some of) its parameters.
        every: record every k-th optimizer step (>= 1).
        memory_limit: bytes of rows kept in memory before spilling to disk.
        spill_dir: folder of the spill file (default: the system's temporary folder).
    """
    recorder = _make_recorder(model, optimizer, every, memory_limit, spill_dir)
    recording = LoopRecorder(recorder)
    recording.start()

    def hook(_optimizer: Any, _args: Any, _kwargs: Any) -> None:
        recording.after_step()

    handle = optimizer.register_step_post_hook(hook)
    try:
        yield recording
    finally:
        handle.remove()
    recording.finish()


def _make_recorder(
    model: Any,
    optimizer: Any,
    every: Any,
    memory_limit: Any,
    spill_dir: str | os.PathLike | None,
) -> TrajectoryRecorder:
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected model to be a torch.nn.Module but got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"Expected optimizer to be a torch.optim.Optimizer but got {type(optimizer).__name__}"
        )
    owned = {id(p) for p in model.parameters()}
    updated = [p for group in optimizer.param_groups for p in group["params"]]
    if not any(id(p) in owned for p in updated):
        raise ValueError(
            "Expected an optimizer that updates parameters of model, but none of its "
            f"{len(updated)} parameters belongs to the {type(model).__name__}"
        )
    name, lr = optimizer_summary(optimizer)
    return TrajectoryRecorder(
        model,
        every=check_positive_int(every, "every"),
        memory_limit=check_positive_int(memory_limit, "memory_limit"),
        spill_dir=spill_dir,
        optimizer=name,
        learning_rate=lr,
    )
