"""``LossLandscapeCallback``: records the weights of any Lightning ``Trainer.fit`` as a
:class:`~loss_landscape_anim.Trajectory`.

Importing this module imports Lightning (``lightning``, else ``pytorch_lightning``); without either
it raises ``ImportError`` with the command that installs it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from .._validate import check_positive_int, lazy_tensor_names
from ..optimizers import optimizer_summary
from ..params.store import DEFAULT_MEMORY_LIMIT, check_spill_dir
from ..record.loop import LoopRecorder
from ..record.recorder import TrajectoryRecorder
from ..results import Trajectory
from .end_of_training import DEFAULT_CALLBACK_EXAMPLES, DEFAULT_CALLBACK_RESOLUTION, EndOfTraining

__all__ = ["FRAMEWORK", "LossLandscapeCallback"]

_INSTALL = 'LossLandscapeCallback needs Lightning: pip install "loss-landscape-anim[lightning]"'

try:
    from lightning.pytorch import Callback

    #: The Lightning package the callback belongs to.
    FRAMEWORK = "lightning"
except ImportError:
    try:
        from pytorch_lightning import Callback  # type: ignore[assignment]

        FRAMEWORK = "pytorch_lightning"
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc


class LossLandscapeCallback(Callback):
    """Records the weights of the trained module during ``Trainer.fit``, with the same row rules
    as :func:`~loss_landscape_anim.train` and :func:`~loss_landscape_anim.record_training`.

    Row 0 holds the initial weights, paired with the loss of the first training batch (the loss
    ``training_step`` returned, measured on those weights); then the weights after every
    ``every_n_steps``-th optimizer step (``trainer.global_step``), each paired with the loss of the
    batch that was measured on them (the mean over the micro-batches of gradient accumulation,
    each as ``training_step`` returned it, before Lightning divides it by
    ``accumulate_grad_batches``); the last row the final weights. NaN where no batch measured a
    row's weights (``every_n_steps`` > 1 keeps only the due steps' losses). An ``"accuracy"`` entry
    in what ``training_step`` returns is recorded as the accuracy. With an optimizer that
    evaluates its closure several times per step (LBFGS), the row's loss is the first
    evaluation's, on the row's own weights (and its accuracy NaN: Lightning hands the callback
    only the last evaluation's outputs, measured on trial weights).

    A module with lazy modules (``nn.LazyLinear``, ...) is recorded from its first batch, which
    gives their parameters their shapes. Only the rank that is global zero records; the weights
    are copied to the CPU (past ``memory_limit`` bytes, to a temporary file in ``spill_dir``,
    checked when the callback is made). The rows are part of the callback's state, saved in
    Lightning checkpoints and restored from them, so a resumed fit continues the same
    trajectory; several callbacks in one ``Trainer`` must differ in ``every_n_steps``, which
    names their state.

    Only the trainable parameters are recorded (``requires_grad=True`` when training starts:
    the frozen rest of a fine-tuned model keeps its values).

    When training ends it can also make the landscape: ``output`` writes the animation
    (``.gif``, ``.mp4``, ``.html``), and ``log=True`` sends it to the trainer's own
    ``TensorBoardLogger`` and ``WandbLogger`` at its last global step (as :meth:`log_landscape`
    does). The plane (``method``: ``"pca"``, ``"random"`` or ``"filter"``) is fit to the path and
    the grid of ``resolution`` x ``resolution`` points evaluated on the first ``n_examples``
    examples of ``data`` (default: the trainer's data module, else its training loader), with the
    module as training left it.

    Example::

        callback = LossLandscapeCallback(every_n_steps=10, output="fit.gif", log=True)
        Trainer(max_epochs=5, callbacks=[callback]).fit(model, datamodule)
        plane = project(callback.trajectory, "pca")

    Args:
        every_n_steps: record every k-th optimizer step (>= 1).
        memory_limit: bytes of rows kept in memory before spilling to disk.
        spill_dir: an existing folder for the spill file (default: the system's temporary
            folder).
        output, log, data, resolution, n_examples, method: the landscape made when training
            ends (nothing unless ``output`` or ``log``).
    """

    def __init__(
        self,
        every_n_steps: int = 1,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        spill_dir: str | os.PathLike | None = None,
        output: str | os.PathLike | None = None,
        log: bool = False,
        data: Any = None,
        resolution: int = DEFAULT_CALLBACK_RESOLUTION,
        n_examples: int | None = DEFAULT_CALLBACK_EXAMPLES,
        method: str = "pca",
    ):
        super().__init__()
        self.every_n_steps = check_positive_int(every_n_steps, "every_n_steps")
        self.memory_limit = check_positive_int(memory_limit, "memory_limit")
        self.spill_dir = check_spill_dir(spill_dir)
        self.end = EndOfTraining.of(output, log, data, resolution, n_examples, method)
        #: The landscape made when training ended (None before, or when none was asked).
        self.landscape: Any = None
        self._recording: LoopRecorder | None = None
        self._saved: dict[str, Any] | None = None
        self._step_before = 0
        self._loggers: list[Any] | None = None  # the trainer's, once training ended
        self._last_step = 0
        self._first_loss: Any = None
        self._evaluations = 0

    @property
    def state_key(self) -> str:
        """The key of this callback's state in a checkpoint: the class name, followed by
        ``every_n_steps`` unless it is 1 (the key every checkpoint had before several callbacks
        could share a ``Trainer``)."""
        if self.every_n_steps == 1:
            return type(self).__qualname__
        return self._generate_state_key(every_n_steps=self.every_n_steps)

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        """Find this callback's state in a checkpoint written when every callback's key was the
        class name alone."""
        states = checkpoint.get("callbacks") or {}
        old = states.get(type(self).__qualname__)
        if (
            self.state_key not in states
            and isinstance(old, Mapping)
            and old.get("every_n_steps") == self.every_n_steps
        ):
            self.load_state_dict(dict(old))

    @property
    def trajectory(self) -> Trajectory | None:
        """The rows recorded so far as a :class:`Trajectory` (None on other ranks than global
        zero, and before training starts)."""
        if self._recording is None or not len(self._recording):
            return None
        return self._recording.trajectory()

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        name, lr = _optimizer_summary(trainer.optimizers, pl_module)
        recorder = TrajectoryRecorder(
            pl_module,
            every=self.every_n_steps,
            memory_limit=self.memory_limit,
            spill_dir=self.spill_dir,
            optimizer=name,
            learning_rate=lr,
        )
        self._recording = LoopRecorder(recorder)
        if self._saved is not None:  # resumed from a checkpoint
            self._recording.load_state_dict(self._saved)
            self._saved = None
            self._recording.advance(trainer.global_step)
        else:
            self._recording.start(trainer.global_step)

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        self._step_before = trainer.global_step
        self._first_loss, self._evaluations = None, 0

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: Any) -> None:
        if self._recording is None:
            return
        self._recording.take()  # row 0 of a lazy module, now that its first batch shaped it
        if pl_module.automatic_optimization:  # one backward per evaluation of the closure
            self._evaluations += 1
            if self._first_loss is None:
                self._first_loss = loss.detach().clone()

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._recording is None:
            return
        if not len(self._recording) and not self._recording.diverged:
            # Row 0 of a lazy module that no backward pass has followed yet: it starts from the
            # weights the module holds now.
            if lazy_tensor_names(pl_module):
                if trainer.global_step > self._step_before:
                    _refuse_lazy(pl_module)
                return
            self._recording.start(trainer.global_step)
        loss, accuracy = _loss_and_accuracy(outputs)
        if pl_module.automatic_optimization:
            loss, accuracy = self._measured(trainer, loss, accuracy)
        if loss is not None:
            self._recording.report_loss(loss, accuracy, step=self._step_before)
        self._recording.advance(trainer.global_step)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self._recording is not None:
            self._recording.finish()
        self._loggers = list(trainer.loggers) if trainer.is_global_zero else []
        self._last_step = trainer.global_step
        trajectory = self.trajectory
        if trajectory is None or not self.end.wanted:
            return
        data = trainer.datamodule if trainer.datamodule is not None else trainer.train_dataloader
        self.landscape = self.end.compute(trajectory, pl_module, data)
        if self.end.log:
            self.log_landscape(**self.landscape.results(trajectory))

    def log_landscape(
        self,
        *,
        animation: Any = None,
        grid: Any = None,
        plane: Any = None,
        trajectory: Any = None,
        tag: str = "loss_landscape",
    ) -> list[str]:
        """Log a landscape to the loggers of the trainer this callback last trained with, at
        its last global step: to a ``TensorBoardLogger`` with
        :func:`~loss_landscape_anim.log_tensorboard`, to a ``WandbLogger`` with
        :func:`~loss_landscape_anim.log_wandb` (other loggers are skipped, with a warning;
        nothing is logged on ranks other than global zero).

        Example::

            trainer = Trainer(logger=TensorBoardLogger("runs"), callbacks=[callback])
            trainer.fit(model, datamodule)
            plane = project(callback.trajectory, "pca")
            grid = compute_loss_grid(model, datamodule, plane)
            animation = animate(callback.trajectory, plane, grid, None, format="gif")
            callback.log_landscape(animation=animation, grid=grid, plane=plane)

        Returns:
            The tags written, each prefixed by the logger's kind (``"tensorboard:"``,
            ``"wandb:"``).
        """
        if self._loggers is None:
            raise RuntimeError(
                "log_landscape logs to the trainer's loggers: call it after Trainer.fit has "
                "run with this callback"
            )
        from .trainer_loggers import log_to_loggers

        results = {"animation": animation, "grid": grid, "plane": plane, "trajectory": trajectory}
        return log_to_loggers(self._loggers, FRAMEWORK, step=self._last_step, tag=tag, **results)

    def state_dict(self) -> dict[str, Any]:
        """The rows recorded so far (tensors and lists) and the settings."""
        state: dict[str, Any] = {"every_n_steps": self.every_n_steps}
        if self._recording is not None and len(self._recording):
            state["recording"] = self._recording.state_dict()
        elif self._saved is not None:
            state["recording"] = self._saved
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from the rows of a checkpoint when training starts again."""
        every = state_dict.get("every_n_steps", self.every_n_steps)
        if every != self.every_n_steps:
            raise ValueError(
                f"The checkpoint's LossLandscapeCallback recorded every {every} steps but this "
                f"one records every {self.every_n_steps}: use every_n_steps={every}"
            )
        self._saved = state_dict.get("recording")
        self._recording = None

    def _measured(self, trainer: Any, loss: Any, accuracy: Any) -> tuple[Any, Any]:
        """The loss and accuracy ``training_step`` measured on the weights the batch started
        from, under automatic optimization: Lightning hands the callback the loss divided by
        ``accumulate_grad_batches``, and, when the optimizer evaluated its closure more than once
        (LBFGS), the outputs of the last evaluation, on trial weights."""
        scale = trainer.accumulate_grad_batches
        if self._evaluations > 1:
            scaled = getattr(getattr(trainer, "precision_plugin", None), "scaler", None) is not None
            loss = None if scaled or self._first_loss is None else self._first_loss
            accuracy = None
        return (None if loss is None else loss * scale), accuracy


def _optimizer_summary(optimizers: list[Any], module: Any) -> tuple[str, float]:
    """The name and learning rate of the first optimizer that updates parameters of ``module``
    (``("", nan)`` when none does: Lightning stands a placeholder in for a missing optimizer)."""
    owned = {id(p) for p in module.parameters()}
    for optimizer in optimizers:
        if any(id(p) in owned for g in optimizer.param_groups for p in g["params"]):
            return optimizer_summary(optimizer)
    return "", math.nan


def _refuse_lazy(module: Any) -> None:
    raise ValueError(
        f"LossLandscapeCallback cannot record {type(module).__name__}: its lazy parameters "
        f"{lazy_tensor_names(module)[:3]} still have no shape after a training step; its "
        "training_step must run every lazy module on the batch"
    )


def _loss_and_accuracy(outputs: Any) -> tuple[Any, Any]:
    """The loss (and accuracy, if given) that ``training_step`` returned."""
    if isinstance(outputs, Mapping):
        return outputs.get("loss"), outputs.get("accuracy")
    return outputs, None
