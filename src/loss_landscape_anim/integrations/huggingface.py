"""``LossLandscapeCallback`` for Hugging Face's ``Trainer``: records the trainable weights of
``Trainer.train()`` as a :class:`~loss_landscape_anim.Trajectory`.

Importing this module imports ``transformers``; without it, it raises ``ImportError`` with the
command that installs it.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import load_npz, save_npz
from .._validate import check_positive_int
from ..losses import Loss, loss_for, predictions
from ..optimizers import optimizer_summary
from ..params.store import DEFAULT_MEMORY_LIMIT, check_spill_dir
from ..record.loop import LoopRecorder
from ..record.recorder import TrajectoryRecorder
from ..results import Trajectory
from .end_of_training import DEFAULT_CALLBACK_EXAMPLES, DEFAULT_CALLBACK_RESOLUTION, EndOfTraining

__all__ = ["STATE_FILE", "LossLandscapeCallback"]

_INSTALL = 'LossLandscapeCallback for transformers needs it: pip install "loss-landscape-anim[transformers]"'

try:
    from transformers import TrainerCallback
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
except ImportError as exc:
    raise ImportError(_INSTALL) from exc

logger = logging.getLogger(__name__)

#: The callback's file in a checkpoint folder (``{every}``: its ``every``).
STATE_FILE = "loss_landscape_every{every}.npz"
_KIND = "LossLandscapeCallbackState"


class LossLandscapeCallback(TrainerCallback):
    """Records the trainable weights during ``Trainer.train()``, with the row rules of
    :func:`~loss_landscape_anim.train` and :func:`~loss_landscape_anim.record_training`.

    Row 0 holds the weights training starts from, then the weights after every ``every``-th
    optimizer step (``state.global_step``), the last row the final weights. Each row is paired
    with the loss measured on its weights by the training step that followed it: the loss
    :func:`~loss_landscape_anim.compute_loss_grid` maps (the mean cross-entropy over the label
    tokens of the step's batches, labels shifted for a causal language model, or the model's
    ``loss_fn``), computed from the logits of the training forward passes (no extra pass), NaN
    where no batch measured a row's weights (``every`` > 1). Only the trainable parameters are
    recorded (``requires_grad=True`` when training starts: a LoRA adapter's, the unfrozen layers);
    only the world's process zero records, copying them to the CPU (past ``memory_limit`` bytes,
    to a temporary file in ``spill_dir``).

    The rows are saved into every checkpoint folder the trainer writes (``loss_landscape_every1.npz``
    beside the model's weights), and ``trainer.train(resume_from_checkpoint=...)`` continues the
    trajectory from the checkpoint of the step it resumes from (one of ``output_dir``'s
    ``checkpoint-N`` folders, as ``resume_from_checkpoint=True`` finds them, or the folder named
    in ``TrainingArguments.resume_from_checkpoint``).

    When training ends it can also make the landscape: ``output`` writes the animation (``.gif``,
    ``.mp4``, ``.html``), and ``log=True`` sends it to the trainer's own loggers, those of
    ``report_to``: TensorBoard (into the run folder of its ``TensorBoardCallback``) and Weights &
    Biases (into the run of its ``WandbCallback``). The plane (``method``: ``"pca"``, ``"random"``
    or ``"filter"``) is fit to the path, the grid of ``resolution`` x ``resolution`` points is
    evaluated on the first ``n_examples`` examples of ``data`` (default: the trainer's evaluation
    data if it has any, else its training data), with the model as training left it.

    Example::

        callback = LossLandscapeCallback(every=1, output="finetune.gif")
        Trainer(model=model, args=args, train_dataset=train, callbacks=[callback]).train()
        plane = project(callback.trajectory, "pca")

    Args:
        every: record every k-th optimizer step (>= 1).
        memory_limit: bytes of rows kept in memory before spilling to disk.
        spill_dir: an existing folder for the spill file (default: the system's temporary folder).
        output, log, data, resolution, n_examples, method: the landscape made when training ends
            (nothing unless ``output`` or ``log``).
    """

    def __init__(
        self,
        every: int = 1,
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
        self.every = check_positive_int(every, "every")
        self.memory_limit = check_positive_int(memory_limit, "memory_limit")
        self.spill_dir = check_spill_dir(spill_dir)
        self.end = EndOfTraining.of(output, log, data, resolution, n_examples, method)
        self._recording: LoopRecorder | None = None
        self._loss: Loss | None = None
        self._measured: list[list[float]] = []  # loss sum, terms, right predictions per pass
        self._step_before = 0
        self._hook: Any = None
        #: The landscape made when training ended (None before, or when none was asked).
        self.landscape: Any = None

    @property
    def trajectory(self) -> Trajectory | None:
        """The rows recorded so far as a :class:`Trajectory` (None on other processes than the
        world's zero, and before training starts)."""
        if self._recording is None or not len(self._recording):
            return None
        return self._recording.trajectory()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model = kwargs.get("model")
        if not state.is_world_process_zero or model is None:
            return
        name, lr = _summary(kwargs.get("optimizer"))
        recorder = TrajectoryRecorder(
            model,
            every=self.every,
            memory_limit=self.memory_limit,
            spill_dir=self.spill_dir,
            optimizer=name,
            learning_rate=lr,
        )
        self._recording = LoopRecorder(recorder)
        saved = self._saved_state(args, state) if state.global_step > 0 else None
        if saved is not None:
            self._recording.load_state_dict(saved)
            self._recording.advance(state.global_step)
        else:
            self._recording.start(state.global_step)
        self._step_before = state.global_step
        self._hook = model.register_forward_hook(self._measure, with_kwargs=True)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step_before = state.global_step
        self._measured = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._recording is None:
            return
        if self._measured:
            total, terms, right = np.sum(self._measured, axis=0)
            if terms:
                accuracy = None if math.isnan(right) else right / terms
                self._recording.report_loss(total / terms, accuracy, step=self._step_before)
        self._measured = []
        self._recording.advance(state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._recording is None:
            return
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if not folder.is_dir():
            logger.warning("No checkpoint folder %s to save the recorded rows into", folder)
            return
        state_dict = self._recording.state_dict()
        arrays = {"rows": state_dict.pop("rows").numpy()}
        for key in ("steps", "loss", "accuracy"):
            arrays[key] = np.asarray(state_dict.pop(key), dtype=np.float64)
        save_npz(folder / STATE_FILE.format(every=self.every), _KIND, arrays, state_dict)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self._recording is None:
            return
        self._recording.finish()
        trajectory = self.trajectory
        if trajectory is None or not self.end.wanted:
            return
        model = kwargs["model"]
        data = kwargs.get("eval_dataloader") or kwargs.get("train_dataloader")
        self.landscape = self.end.compute(trajectory, model, data)
        if self.end.log:
            from .report_to import log_to_report_to

            log_to_report_to(step=state.global_step, **self.landscape.results(trajectory))

    # -- measuring the loss of a step's weights ---------------------------------------------

    def _measure(self, module: Any, args: Any, kwargs: Any, output: Any) -> None:
        """A training forward pass: the loss of its batch, summed over the loss's terms (label
        tokens or examples), from its logits and the ``labels`` it was given."""
        labels = kwargs.get("labels")
        if not module.training or self._recording is None or not isinstance(labels, torch.Tensor):
            return
        with torch.no_grad():
            logits = predictions(output).detach()
            if self._loss is None:
                self._loss = loss_for(module, logits, labels, named=True)
            loss = self._loss
            counts = loss.counts(labels)
            terms = int(counts.sum()) if counts is not None else int(labels.shape[0])
            total = float(loss(logits.float(), labels)) * terms
            right = loss.accuracy(logits, labels) * terms
        self._measured.append([total, terms, right])

    def _saved_state(self, args: Any, state: Any) -> dict[str, Any] | None:
        """The rows saved in the checkpoint training resumes from, if it can be found."""
        name = STATE_FILE.format(every=self.every)
        folders = [Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"]
        if isinstance(getattr(args, "resume_from_checkpoint", None), str):
            folders.insert(0, Path(args.resume_from_checkpoint))
        for folder in folders:
            if (folder / name).is_file():
                arrays, meta = load_npz(folder / name, _KIND, arrays=("rows", "steps"))
                return {
                    "rows": torch.from_numpy(arrays["rows"]),
                    "steps": [int(s) for s in arrays["steps"]],
                    "loss": arrays["loss"].tolist(),
                    "accuracy": arrays["accuracy"].tolist(),
                    "step": int(meta["step"]),
                    "diverged": bool(meta["diverged"]),
                }
        logger.warning(
            "Training resumes at step %d but no %s was found in %s: the trajectory starts here",
            state.global_step,
            name,
            " or ".join(map(str, folders)),
        )
        return None


def _summary(optimizer: Any) -> tuple[str, float]:
    """The name and learning rate of the trainer's optimizer (unwrapped from Accelerate's)."""
    inner = getattr(optimizer, "optimizer", optimizer)
    if inner is None or not hasattr(inner, "param_groups"):
        return "", math.nan
    return optimizer_summary(inner)
