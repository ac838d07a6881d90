"""``TrajectoryRecorder``: the one place that turns a model's weights during training into the rows
of a :class:`~loss_landscape_anim.Trajectory`.

The row rules every way of recording shares (our :func:`~loss_landscape_anim.train`, a plain loop,
a trainer's callback):

- row t holds every parameter, flattened in ``model.parameters()`` order, after ``steps[t]``
  optimizer steps; the first row is recorded before the first step (the initial weights), the last
  one after the last step (the final weights);
- a row's loss and accuracy are the ones measured on *those* weights (for a training step: the
  loss of the forward pass that precedes the step); NaN where nothing measured them, never a
  neighbouring row's value;
- rows are kept in the model's floating dtype (float64 stays float64; other dtypes are kept as
  float32) in bounded memory: past ``memory_limit`` bytes they spill to a temporary file.
"""

from __future__ import annotations

import bisect
import math
import os

import numpy as np
import torch
from torch import nn

from .._validate import check_positive_int
from ..params.layout import ParamLayout, flatten_params
from ..params.store import DEFAULT_MEMORY_LIMIT, RowStore
from ..results.trajectory import Trajectory

__all__ = ["TrajectoryRecorder"]


class TrajectoryRecorder:
    """Records the weights of ``model`` as trajectory rows (see the module's row rules).

    Use :meth:`due` to ask whether a step is one to record, :meth:`record` to record the weights
    the model holds now, and :meth:`trajectory` at the end. The recorder reads the model; it never
    changes it, its mode or torch's settings.

    Args:
        model: the model being trained (its parameters are read, not copied, until recorded).
        every: record every k-th step (steps 0, k, 2k, ...).
        memory_limit: bytes of rows held in memory before spilling to a temporary file.
        expected_rows: how many rows to preallocate room for, when known.
        spill_dir: folder of the spill file (default: the system's temporary folder).
        optimizer, learning_rate: recorded with the trajectory, for labels and legends.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        every: int = 1,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        expected_rows: int | None = None,
        spill_dir: str | os.PathLike | None = None,
        optimizer: str = "",
        learning_rate: float = math.nan,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"Expected model to be a torch.nn.Module but got {type(model).__name__}"
            )
        self.model = model
        self.layout = ParamLayout.of(model)
        self.every = check_positive_int(every, "every")
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self._store = RowStore(
            self.layout.n_params,
            _row_dtype(next(model.parameters()).dtype),
            memory_limit=check_positive_int(memory_limit, "memory_limit"),
            expected_rows=expected_rows,
            spill_dir=spill_dir,
        )
        self.loss: list[float] = []
        self.accuracy: list[float] = []
        self.steps: list[int] = []

    def __len__(self) -> int:
        return len(self._store)

    def due(self, step: int) -> bool:
        """True when ``step`` is one of the steps to record (every ``every``-th)."""
        return step % self.every == 0

    def record(
        self,
        step: int,
        loss: float = math.nan,
        accuracy: float = math.nan,
        *,
        weights: torch.Tensor | None = None,
    ) -> bool:
        """Record the weights the model holds now as the row of ``step``, with the loss and
        accuracy measured on these same weights (NaN: not measured). ``weights`` (P,) records
        those flat weights instead (rows saved earlier, restored).

        Returns False, and records nothing, when the weights are not all finite."""
        flat = flatten_params(self.model) if weights is None else weights.reshape(-1)
        if flat.numel() != self.layout.n_params:
            raise ValueError(
                f"Expected {self.layout.n_params} weights in a row but got {flat.numel()}"
            )
        if not bool(torch.isfinite(flat).all()):
            return False
        if self.steps and step <= self.steps[-1]:
            raise ValueError(
                f"Expected steps to increase but step {step} follows step {self.steps[-1]}"
            )
        self._store.append(flat)
        self.loss.append(float(loss))
        self.accuracy.append(float(accuracy))
        self.steps.append(int(step))
        return True

    def set_measurement(self, step: int, loss: float, accuracy: float = math.nan) -> None:
        """Pair the row of ``step``, recorded earlier, with the loss and accuracy measured on its
        weights afterwards (a loop measures weights before it steps away from them).

        Raises ``KeyError`` when no row of ``step`` was recorded."""
        index = bisect.bisect_left(self.steps, step)
        if index == len(self.steps) or self.steps[index] != step:
            raise KeyError(f"No row of step {step} was recorded")
        self.loss[index] = float(loss)
        self.accuracy[index] = float(accuracy)

    def rows(self) -> np.ndarray:
        """The (T, P) rows recorded so far (a read-only map of the spill file once spilled)."""
        return self._store.rows()

    def trajectory(self, *, diverged: bool = False) -> Trajectory:
        """The recorded rows as a :class:`Trajectory`, with the model's buffers (BatchNorm
        statistics, ...) as they are now."""
        if not len(self):
            raise ValueError("Expected at least one recorded row but nothing was recorded")
        return Trajectory(
            params=self._store.rows(),
            loss=np.array(self.loss, dtype=np.float64),
            accuracy=np.array(self.accuracy, dtype=np.float64),
            steps=np.array(self.steps, dtype=np.int64),
            layout=self.layout,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            diverged=diverged,
            buffers={k: v.detach().cpu().numpy().copy() for k, v in self.model.named_buffers()},
        )

    def close(self) -> None:
        """Drop what was recorded (and any spill file); for a run that failed."""
        self._store.close()


def _row_dtype(dtype: torch.dtype) -> type:
    return np.float64 if dtype == torch.float64 else np.float32
