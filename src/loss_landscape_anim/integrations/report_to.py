"""Results to the loggers of a Hugging Face ``Trainer``, those its ``report_to`` names: the run
folder of its ``TensorBoardCallback`` through :func:`~loss_landscape_anim.log_tensorboard`, the run
of its ``WandbCallback`` through :func:`~loss_landscape_anim.log_wandb`.

A ``TrainerCallback`` is handed no reference to the other callbacks; they are those of the
``CallbackHandler`` that is calling it, found on the call stack.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from ..export import log_tensorboard, log_wandb

__all__ = ["log_to_report_to", "trainer_callbacks"]

logger = logging.getLogger(__name__)


def trainer_callbacks() -> list[Any]:
    """The callbacks of the ``Trainer`` whose callback handler is running the current event
    (empty outside an event)."""
    from transformers.trainer_callback import CallbackHandler

    frame = inspect.currentframe()
    while frame is not None:
        handler = frame.f_locals.get("self")
        if isinstance(handler, CallbackHandler):
            return list(handler.callbacks)
        frame = frame.f_back
    return []


def log_to_report_to(*, step: int, tag: str = "loss_landscape", **results: Any) -> list[str]:
    """Log ``results`` (``animation``, ``grid``, ``plane``, ``trajectory``) to the TensorBoard
    and W&B runs of the trainer running the current event: TensorBoard at ``step`` (the global
    step), W&B at its own next step (the trainer logs to W&B without steps, so an earlier one
    would be dropped). Returns the tags written, each prefixed by the logger's kind
    (``"tensorboard:"``, ``"wandb:"``)."""
    from transformers.integrations import TensorBoardCallback, WandbCallback

    written: list[str] = []
    for callback in trainer_callbacks():
        if isinstance(callback, TensorBoardCallback):
            written += [f"tensorboard:{t}" for t in _tensorboard(callback, step, tag, results)]
        elif isinstance(callback, WandbCallback):
            run = getattr(getattr(callback, "_wandb", None), "run", None)
            if run is None:
                logger.warning("Skipped W&B: the trainer's WandbCallback has no run")
                continue
            written += [f"wandb:{k}" for k in log_wandb(run, step=None, tag=tag, **results)]
    if not written:
        logger.warning(
            "log=True but the trainer reports to neither TensorBoard nor W&B (report_to): "
            "the landscape was not logged"
        )
    return written


def _tensorboard(callback: Any, step: int, tag: str, results: dict[str, Any]) -> list[str]:
    """Log to the callback's writer, or to a new one in its run folder (the callback closes its
    writer when training ends, before this callback's turn)."""
    writer = callback.tb_writer
    if writer is not None:
        return log_tensorboard(writer, step=step, tag=tag, **results)
    if callback.logging_dir is None:
        logger.warning("Skipped TensorBoard: the trainer's TensorBoardCallback has no run folder")
        return []
    writer = callback._SummaryWriter(log_dir=callback.logging_dir)
    try:
        return log_tensorboard(writer, step=step, tag=tag, **results)
    finally:
        writer.close()
