"""``Trajectory``: the recorded optimisation path, the weights of every recorded step with the loss
and accuracy of those same weights."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..params.layout import ParamLayout
from ..params.store import SpilledRows
from ._base import Result
from ._checks import array_field, check_finite, check_increasing

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Trajectory"]

_BUFFER_PREFIX = "buffer:"


@dataclass(frozen=True, eq=False)
class Trajectory(Result):
    """Weights recorded along training, with the loss and accuracy of those same weights.

    Attributes:
        params: (T, P) array in the model's floating dtype; row t is every parameter of the
            layout (the model's trainable ones when recording started: a LoRA adapter, the
            unfrozen layers), flattened in ``model.parameters()`` order, after ``steps[t]``
            optimizer steps. Row 0 holds the initial
            weights, the last row the weights training ended with. May be a read-only disk-backed
            memory map for large runs.
        loss: (T,) loss of the weights of each row, on the batch they were evaluated on (the full
            data set for full-batch training).
        accuracy: (T,) accuracy in [0, 1] of the same, NaN where the model is not a classifier.
        steps: (T,) number of optimizer steps taken before each row.
        layout: names and shapes of the parameters.
        optimizer: name of the optimizer that produced the path.
        learning_rate: its learning rate.
        diverged: True when training stopped early because it reached non-finite values.
        buffers: the model's buffers (BatchNorm statistics, ...) when training ended, by name.
        frozen: how many parameter values of the model the rows leave out (frozen when recording
            started: they keep the model's own values wherever the rows are used).
    """

    params: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    steps: np.ndarray
    layout: ParamLayout
    optimizer: str = ""
    learning_rate: float = math.nan
    diverged: bool = False
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    frozen: int = 0

    ARRAYS = ("params", "loss", "accuracy", "steps")
    REQUIRED = ARRAYS
    REQUIRED_META = ("layout",)

    def __post_init__(self) -> None:
        if not isinstance(self.layout, ParamLayout):
            raise TypeError(
                f"Expected layout to be a ParamLayout but got {type(self.layout).__name__}"
            )
        if not isinstance(self.params, np.ndarray):
            raise TypeError(
                f"Expected params to be a numpy array but got {type(self.params).__name__}"
            )
        params = self.params
        if params.ndim != 2 or params.shape[1] != self.layout.n_params:
            raise ValueError(
                f"Expected params of shape (T, {self.layout.n_params}) but got {params.shape}"
            )
        array_field(params, "params", (None, self.layout.n_params))
        T = params.shape[0]
        if T < 1:
            raise ValueError("Expected a trajectory with at least one recorded step")
        if not isinstance(params, SpilledRows):  # spilled rows were checked as they were recorded
            check_finite(params, "params")
        loss = array_field(self.loss, "loss", (T,))  # NaN where not measured
        accuracy = array_field(self.accuracy, "accuracy", (T,))
        if np.any((accuracy < 0) | (accuracy > 1)):
            raise ValueError(f"Expected accuracy in [0, 1] or NaN but got {accuracy}")
        steps = array_field(self.steps, "steps", (T,), kind="int")
        check_increasing(steps, "steps")
        if T and steps[0] < 0:
            raise ValueError(f"Expected steps >= 0 but got {steps}")
        if not isinstance(self.optimizer, str):
            raise TypeError(f"Expected optimizer to be a string but got {self.optimizer!r}")
        rate = self.learning_rate
        known = isinstance(rate, numbers.Real) and not isinstance(rate, bool)
        if not (known and (0 <= rate < math.inf or math.isnan(rate))):  # NaN: unknown
            raise ValueError(f"Expected learning_rate >= 0 or NaN but got {rate!r}")
        if not isinstance(self.diverged, (bool, np.bool_)):
            raise TypeError(f"Expected diverged to be True or False but got {self.diverged!r}")
        if not isinstance(self.buffers, dict) or not all(
            isinstance(k, str) and isinstance(v, np.ndarray) and v.dtype != object
            for k, v in self.buffers.items()
        ):
            raise TypeError("Expected buffers to be a dict of names -> numeric numpy arrays")
        if isinstance(self.frozen, bool) or not isinstance(self.frozen, int | np.integer):
            raise TypeError(f"Expected frozen to be an integer but got {self.frozen!r}")
        if self.frozen < 0:
            raise ValueError(f"Expected frozen >= 0 but got {self.frozen}")
        object.__setattr__(self, "frozen", int(self.frozen))
        for name, value in (("loss", loss), ("accuracy", accuracy), ("steps", steps)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "learning_rate", float(rate))
        object.__setattr__(self, "diverged", bool(self.diverged))

    def __len__(self) -> int:
        return int(self.params.shape[0])

    @property
    def n_params(self) -> int:
        return self.layout.n_params

    @property
    def subspace(self) -> str:
        """Which weights the rows hold, in words ("" when they hold every parameter): how many
        of the model's weights were trainable, and of which kinds."""
        return self.layout.subspace(self.frozen)

    @property
    def final_params(self) -> np.ndarray:
        return np.asarray(self.params[-1])

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the recorded weights (the model's)."""
        return self.params.dtype

    def fingerprint(self) -> str:
        """A short hash of the layout, the steps and the first and last rows: what tells one
        run's path from another's (the losses are left out: :func:`fill_losses` changes them)."""
        digest = hashlib.sha256(json.dumps(self.layout.to_json()).encode())
        digest.update(np.ascontiguousarray(self.steps, dtype=np.int64).tobytes())
        for row in (self.params[0], self.params[-1]):
            digest.update(np.ascontiguousarray(row).tobytes())
        return digest.hexdigest()[:16]

    def state_dict(self, t: int = -1) -> dict[str, torch.Tensor]:
        """The weights of row ``t`` as a ``state_dict`` of the parameters (new tensors, in the
        recorded dtype)."""
        import torch

        flat = torch.from_numpy(np.array(self.params[t]))
        return {k: v.clone() for k, v in self.layout.unflatten(flat).items()}

    def apply_to(self, model: nn.Module, row: int = -1) -> nn.Module:
        """Load the weights of ``row`` (default: the last, the weights training ended with) into
        ``model`` and return it; for the last row the recorded buffers too (BatchNorm running
        statistics), so that the model evaluates as the trained one did. Other rows carry no
        buffers: the model's own are kept, and so are its frozen parameters (those the rows
        leave out).

        Raises :class:`IncompatibleFileError` when ``model`` is of another architecture, and
        ``IndexError`` for a row the trajectory does not have.
        """
        import torch

        n = len(self)
        if isinstance(row, bool) or not isinstance(row, int | np.integer) or not -n <= row < n:
            raise IndexError(f"Expected row to be an integer in [{-n}, {n - 1}] but got {row!r}")
        self.layout.check_model(model)
        state: dict[str, Any] = self.state_dict(int(row))
        if int(row) % n == n - 1:
            state.update({k: torch.from_numpy(np.array(v)) for k, v in self.buffers.items()})
        with torch.no_grad():
            targets: dict[str, torch.Tensor] = dict(model.named_parameters())
            targets.update(dict(model.named_buffers()))
            for name, value in state.items():
                if name in targets:
                    targets[name].copy_(value.to(targets[name].device, targets[name].dtype))
        return model

    def _saved(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays, meta = super()._saved()
        arrays.update({_BUFFER_PREFIX + name: value for name, value in meta.pop("buffers").items()})
        meta["layout"] = self.layout.to_json()
        return arrays, meta

    @classmethod
    def _from_saved(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Trajectory:
        buffers = {
            k[len(_BUFFER_PREFIX) :]: v for k, v in arrays.items() if k.startswith(_BUFFER_PREFIX)
        }
        meta = {**meta, "layout": ParamLayout.from_json(meta["layout"]), "buffers": buffers}
        return super()._from_saved(arrays, meta)
