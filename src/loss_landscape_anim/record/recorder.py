"""``TrajectoryRecorder``: the one place that turns a model's weights during training into the rows
of a :class:`~loss_landscape_anim.Trajectory`.

The row rules every way of recording shares (our :func:`~loss_landscape_anim.train`, a plain loop,
a trainer's callback):

- row t holds every trainable parameter (``requires_grad=True`` when recording starts: the
  frozen rest of a LoRA model or of frozen layers is left out, see
  :meth:`~loss_landscape_anim.params.layout.ParamLayout.of`), flattened in ``model.parameters()``
  order, after ``steps[t]`` optimizer steps; the first row is recorded before the first step (the initial weights), the last
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
import numbers
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from .._validate import check_positive_int, lazy_tensor_names
from ..params.layout import ParamLayout, flatten_params, n_frozen
from ..params.store import DEFAULT_MEMORY_LIMIT, RowStore, check_spill_dir
from ..results.trajectory import Trajectory

__all__ = ["TrajectoryRecorder"]


class TrajectoryRecorder:
    """Records the weights of ``model`` as trajectory rows (see the module's row rules).

    Use :meth:`due` to ask whether a step is one to record, :meth:`record` to record the weights
    the model holds now, and :meth:`trajectory` at the end. The recorder reads the model; it never
    changes it, its mode or torch's settings. A model with lazy modules (``nn.LazyLinear``, ...)
    can be given before its first batch: rows can be recorded once that batch has given its
    parameters their shapes.

    Args:
        model: the model being trained (its parameters are read, not copied, until recorded).
        every: record every k-th step (steps 0, k, 2k, ...).
        memory_limit: bytes of rows held in memory before spilling to a temporary file.
        expected_rows: how many rows to preallocate room for, when known.
        spill_dir: an existing folder for the spill file, checked at once (default: the
            system's temporary folder).
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
        self.every = check_positive_int(every, "every")
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self._memory_limit = check_positive_int(memory_limit, "memory_limit")
        self._expected_rows = expected_rows
        self._spill_dir = check_spill_dir(spill_dir)
        self._layout: ParamLayout | None = None
        self._names: tuple[str, ...] | None = None  # None: every parameter
        self._frozen = 0
        self._store: RowStore | None = None
        if not lazy_tensor_names(model):
            self._open()
        self.loss: list[float] = []
        self.accuracy: list[float] = []
        self.steps: list[int] = []

    @property
    def layout(self) -> ParamLayout:
        """The layout of the rows (``ValueError`` while lazy parameters have no shape yet)."""
        self._open()
        assert self._layout is not None
        return self._layout

    def __len__(self) -> int:
        return 0 if self._store is None else len(self._store)

    def due(self, step: int) -> bool:
        """True when ``step`` (a number of optimizer steps, >= 0) is one to record (every
        ``every``-th)."""
        return check_positive_int(step, "step", allow_zero=True) % self.every == 0

    def has_row(self, step: int) -> bool:
        """True when the row of ``step`` was recorded."""
        index = bisect.bisect_left(self.steps, step)
        return index < len(self.steps) and self.steps[index] == step

    def record(
        self,
        step: int,
        loss: float = math.nan,
        accuracy: float = math.nan,
        *,
        weights: torch.Tensor | None = None,
    ) -> bool:
        """Record the weights the model holds now as the row of ``step`` (optimizer steps
        taken, an integer >= 0 above the last row's), with the loss and accuracy measured on
        these same weights (numbers; NaN: not measured). ``weights`` (P,) records those flat
        weights instead (rows saved earlier, restored).

        Returns False, and records nothing, when the weights are not all finite."""
        step = check_positive_int(step, "step", allow_zero=True)
        if self.steps and step <= self.steps[-1]:
            raise ValueError(
                f"Expected steps to increase but step {step} follows step {self.steps[-1]}"
            )
        loss, accuracy = as_number(loss, "loss"), as_number(accuracy, "accuracy")
        store = self._open()
        flat = flatten_params(self.model, self._names) if weights is None else weights.reshape(-1)
        if flat.numel() != self.layout.n_params:
            raise ValueError(
                f"Expected {self.layout.n_params} weights in a row but got {flat.numel()}"
            )
        if not bool(torch.isfinite(flat).all()):
            return False
        store.append(flat)
        self.loss.append(loss)
        self.accuracy.append(accuracy)
        self.steps.append(step)
        return True

    def set_measurement(self, step: int, loss: float, accuracy: float = math.nan) -> None:
        """Pair the row of ``step``, recorded earlier, with the loss and accuracy measured on its
        weights afterwards (a loop measures weights before it steps away from them).

        Raises ``KeyError`` when no row of ``step`` was recorded."""
        index = bisect.bisect_left(self.steps, step)
        if index == len(self.steps) or self.steps[index] != step:
            raise KeyError(f"No row of step {step} was recorded")
        self.loss[index] = as_number(loss, "loss")
        self.accuracy[index] = as_number(accuracy, "accuracy")

    def rows(self) -> np.ndarray:
        """The (T, P) rows recorded so far (a read-only map of the spill file once spilled)."""
        return self._open().rows()

    def trajectory(self, *, diverged: bool = False) -> Trajectory:
        """The recorded rows as a :class:`Trajectory`, with the model's buffers (BatchNorm
        statistics, ...) as they are now."""
        if not len(self):
            raise ValueError("Expected at least one recorded row but nothing was recorded")
        return Trajectory(
            params=self.rows(),
            loss=np.array(self.loss, dtype=np.float64),
            accuracy=np.array(self.accuracy, dtype=np.float64),
            steps=np.array(self.steps, dtype=np.int64),
            layout=self.layout,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            diverged=diverged,
            buffers={k: v.detach().cpu().numpy().copy() for k, v in self.model.named_buffers()},
            frozen=self._frozen,
        )

    def close(self) -> None:
        """Drop what was recorded (and any spill file); for a run that failed."""
        if self._store is not None:
            self._store.close()

    def _open(self) -> RowStore:
        """The row store, made when the model's parameters have their shapes (a model with lazy
        modules gets them from its first batch)."""
        if self._store is None:
            self._layout = ParamLayout.of(self.model)
            self._frozen = n_frozen(self.model, self._layout)
            self._names = self._layout.names if self._frozen else None
            first = dict(self.model.named_parameters())[self._layout.names[0]]
            dtype = _row_dtype(first.dtype)
            self._store = RowStore(
                self._layout.n_params,
                dtype,
                memory_limit=self._memory_limit,
                expected_rows=self._expected_rows,
                spill_dir=self._spill_dir,
            )
        return self._store


def as_number(value: Any, name: str) -> float:
    """``value`` as a float: a real number (``float``, ``np.float32``, ...; not a bool), or a
    tensor or array holding one real value."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = (value.double() if value.is_floating_point() else value).numpy()
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"Expected a scalar {name} but got an array of shape {value.shape}")
        if value.dtype.kind not in "iuf":
            raise TypeError(f"Expected {name} to be a real number but got a {value.dtype} value")
        return float(value.reshape(()))
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Expected {name} to be a number, a scalar tensor or a 0-d array but got "
            f"{type(value).__name__}"
        )
    return float(value)


def _row_dtype(dtype: torch.dtype) -> type:
    return np.float64 if dtype == torch.float64 else np.float32
