"""Results to the loggers of a Lightning ``Trainer``: a ``TensorBoardLogger``'s summary writer through
:func:`~loss_landscape_anim.log_tensorboard`, a ``WandbLogger``'s run through
:func:`~loss_landscape_anim.log_wandb`. Other loggers have no place for pictures and are skipped,
with a warning."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from typing import Any

from ..export import log_tensorboard, log_wandb

__all__ = ["log_to_loggers"]

logger = logging.getLogger(__name__)


def log_to_loggers(
    loggers: Iterable[Any], framework: str, *, step: int, tag: str, **results: Any
) -> list[str]:
    """Log ``results`` (``animation``, ``grid``, ``plane``, ``trajectory``) at ``step`` to each
    TensorBoard or W&B logger of ``loggers`` (Lightning loggers of ``framework``, ``"lightning"``
    or ``"pytorch_lightning"``). Returns the tags written, each prefixed by the logger's kind
    (``"tensorboard:"``, ``"wandb:"``)."""
    kinds = importlib.import_module(
        f"{framework}.pytorch.loggers" if framework == "lightning" else f"{framework}.loggers"
    )
    written: list[str] = []
    for each in loggers:
        if isinstance(each, kinds.TensorBoardLogger):
            tags = log_tensorboard(each.experiment, step=step, tag=tag, **results)
            written += [f"tensorboard:{t}" for t in tags]
        elif isinstance(each, kinds.WandbLogger):
            keys = log_wandb(each.experiment, step=step, tag=tag, **results)
            written += [f"wandb:{k}" for k in keys]
        else:
            logger.warning(
                "Skipped the trainer's %s: the landscape is logged to TensorBoardLogger and "
                "WandbLogger only",
                type(each).__name__,
            )
    return written
