"""Recording a training loop we did not write: :func:`record_training` hooks an optimizer's steps.

The loop stays the user's own; the optimizer's step hooks (``register_step_pre_hook`` and
``register_step_post_hook``) tell the recorder when the weights are about to change and when they
did, and the loop reports the loss it measured before each step with
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

from .._validate import check_positive_int, lazy_tensor_names
from ..errors import DivergenceWarning
from ..optimizers import optimizer_summary
from ..params.store import DEFAULT_MEMORY_LIMIT
from ..results.trajectory import Trajectory
from .recorder import TrajectoryRecorder, as_number

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
        self.loss = self.loss + loss
        self.n_loss += 1
        if accuracy is not None:
            self.accuracy = self.accuracy + accuracy
            self.n_accuracy += 1

    def means(self) -> tuple[float, float]:
        accuracy = float(self.accuracy) / self.n_accuracy if self.n_accuracy else math.nan
        return float(self.loss) / self.n_loss, accuracy


def _detached(value: Any, name: str) -> Any:
    """A reported loss or accuracy, checked: a scalar tensor stays a tensor (read when the
    trajectory is made, so a GPU loop is not made to wait); anything else becomes a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"Expected a scalar {name} but got a tensor of shape {tuple(value.shape)}"
            )
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"Expected {name} to be a real number but got a {value.dtype} value")
        return value.detach().reshape(()).double()
    return as_number(value, name)


def _versions(params: list[torch.Tensor]) -> tuple[int, ...]:
    """The version counters of ``params``: each in-place change of a parameter (an optimizer's
    update, a line search's trial step) moves its counter."""
    return tuple(p._version for p in params)


class LoopRecorder:
    """Rows of a model's weights at the steps of its optimizer (see :func:`record_training`).

    A row is taken once nothing else will change its weights: when the loop next reports a loss,
    steps again or ends, so that every update of an iteration (a second optimizer stepping after
    the recorded one, a constraint applied after the step) is in it.

    Attributes:
        step: optimizer steps taken since recording started.
        diverged: True once the weights stopped being finite (no rows are recorded after that).
    """

    def __init__(self, recorder: TrajectoryRecorder):
        self.recorder = recorder
        self.step = 0
        self.diverged = False
        self._measured: dict[int, _Measurements] = {}
        self._pending = False
        self._maybe_lazy = True  # until a row was taken: lazy parameters are shaped by then
        self._params: list[torch.Tensor] = []  # the model's, read when a row is taken
        self._versions: tuple[int, ...] = ()

    def start(self, step: int = 0) -> None:
        """Record the weights the model holds now as the first row, that of ``step``; for a
        model with lazy modules, as soon as its first batch has given them their shapes."""
        self.step = check_positive_int(step, "step", allow_zero=True)
        self._pending = True
        if not lazy_tensor_names(self.recorder.model):
            self.take()

    def take(self) -> None:
        """Record the row that is due, if any, from the weights the model holds now: the loop is
        about to measure them or to step away from them."""
        if not self._pending or (self._maybe_lazy and lazy_tensor_names(self.recorder.model)):
            return
        self._pending = self._maybe_lazy = False
        if not self.diverged:
            self._record()
            self._params = list(self.recorder.model.parameters())
            self._versions = _versions(self._params)

    def report_loss(self, loss: Any, accuracy: Any = None, *, step: int | None = None) -> None:
        """Report the loss (and accuracy in [0, 1]) the loop measured on the weights it holds now,
        that is, before its next optimizer step: a number, a 0-d array or a scalar tensor (read
        only when the trajectory is made, so a GPU loop is not made to wait).

        Reports between the same two steps (micro-batches of gradient accumulation) are averaged.
        A loss belongs to the weights it was measured on, never to a neighbouring row: reports
        for a step that is not recorded (``every`` > 1) are dropped, and so are reports made
        after the weights changed in place since their row was taken (the closure calls of
        ``torch.optim.LBFGS`` after its first, which measure trial weights of its line search).

        ``step``: the step whose weights were measured, for a loss reported after the loop
        stepped away from them (a trainer's callback sees the loss after the optimizer step)."""
        loss = _detached(loss, "loss")
        accuracy = None if accuracy is None else _detached(accuracy, "accuracy")
        if step is None:
            self.take()
            if self.diverged or _versions(self._params) != self._versions:
                return
            step = self.step
        if not self.recorder.has_row(step):
            return
        self._measured.setdefault(step, _Measurements()).add(loss, accuracy)

    def after_step(self) -> None:
        """Count one optimizer step; its row, when due, is taken when the loop next reports a
        loss, steps again or ends."""
        self._advance(self.step + 1)

    def advance(self, step: int) -> None:
        """The model now holds the weights after ``step`` optimizer steps (a trainer's step
        count), with every update of the step in: record them when the step is due."""
        self._advance(check_positive_int(step, "step", allow_zero=True))
        self.take()

    def finish(self) -> None:
        """Record the final weights, if the last step was not recorded already."""
        self.take()
        if not self.diverged and len(self.recorder) and self.recorder.steps[-1] != self.step:
            self._pending = True
            self.take()

    def _advance(self, step: int) -> None:
        if step > self.step:
            self.step = step
            self._pending = not self.diverged and self.recorder.due(step)

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

    Row 0 is recorded on entering the block (the initial weights; for a model with lazy modules,
    once its first batch has given them their shapes), then the weights after every
    ``every``-th optimizer step (steps ``every``, ``2 * every``, ...), and on leaving the block the
    final weights when their step was not recorded. A step's row is taken at the first of: the
    loop's next ``report_loss``, its next ``optimizer.step()``, leaving the block; so it holds
    every update the loop makes after ``optimizer.step()`` (a second optimizer stepping after it,
    a weight constraint). In a loop whose other updates come before ``optimizer.step()``, report
    the loss before them every step, so that they count with the step they belong to. Inside the
    loop, report the loss of the weights the model holds (measured before
    the step) with ``recording.report_loss(loss)``; for a closure that LBFGS calls several times
    per step, only the call on the step's own weights counts. Rows nobody measured keep NaN,
    which :func:`~loss_landscape_anim.fill_losses` can replace by the loss over given data
    afterwards. The model, its mode and the optimizer are not changed; the hooks are removed on
    leaving the block. Rows past ``memory_limit`` bytes spill to a temporary file in
    ``spill_dir`` (checked on entering the block), as with :func:`~loss_landscape_anim.train`.

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
        spill_dir: an existing folder for the spill file (default: the system's temporary
            folder).
    """
    recorder = _make_recorder(model, optimizer, every, memory_limit, spill_dir)
    recording = LoopRecorder(recorder)
    recording.start()

    def before(_optimizer: Any, _args: Any, _kwargs: Any) -> None:
        recording.take()

    def after(_optimizer: Any, _args: Any, _kwargs: Any) -> None:
        recording.after_step()

    handles = [optimizer.register_step_pre_hook(before), optimizer.register_step_post_hook(after)]
    try:
        yield recording
    finally:
        for handle in handles:
            handle.remove()
        recording.take()  # the due row of the last step, also when the loop was interrupted
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
