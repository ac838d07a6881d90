"""``Trajectory``: the recorded optimisation path, the weights of every recorded step with the loss
and accuracy of those same weights."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._io import load_npz, save_npz
from ..params.layout import ParamLayout

if TYPE_CHECKING:
    import torch

__all__ = ["Trajectory"]

_BUFFER_PREFIX = "buffer:"


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Weights recorded along training, with the loss and accuracy of those same weights.

    Attributes:
        params: (T, P) array in the model's floating dtype; row t is every parameter of the model, flattened in
            ``model.parameters()`` order, after ``steps[t]`` optimizer steps. Row 0 holds the initial
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

    def __post_init__(self) -> None:
        T = self.params.shape[0]
        if self.params.ndim != 2 or self.params.shape[1] != self.layout.n_params:
            raise ValueError(
                f"Expected params of shape (T, {self.layout.n_params}) but got {self.params.shape}"
            )
        for name in ("loss", "accuracy", "steps"):
            if getattr(self, name).shape != (T,):
                raise ValueError(
                    f"Expected {name} of shape ({T},) but got {getattr(self, name).shape}"
                )
        if T < 1:
            raise ValueError("Expected a trajectory with at least one recorded step")

    def __len__(self) -> int:
        return int(self.params.shape[0])

    @property
    def n_params(self) -> int:
        return self.layout.n_params

    @property
    def final_params(self) -> np.ndarray:
        return np.asarray(self.params[-1])

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the recorded weights (the model's)."""
        return self.params.dtype

    def state_dict(self, t: int = -1) -> dict[str, torch.Tensor]:
        """The weights of row ``t`` as a ``state_dict`` of the parameters (new tensors, in the
        recorded dtype)."""
        import torch

        flat = torch.from_numpy(np.array(self.params[t]))
        return {k: v.clone() for k, v in self.layout.unflatten(flat).items()}

    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` as ``.npz`` (data only, readable with ``allow_pickle=False``)."""
        arrays = {
            "params": self.params,
            "loss": self.loss,
            "accuracy": self.accuracy,
            "steps": self.steps,
            **{_BUFFER_PREFIX + name: value for name, value in self.buffers.items()},
        }
        meta = {
            "layout": self.layout.to_json(),
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "diverged": self.diverged,
        }
        return save_npz(path, "Trajectory", arrays, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trajectory:
        """Read a trajectory written by :meth:`save`; refuses anything that is not one."""
        arrays, meta = load_npz(path, "Trajectory")
        return cls(
            params=arrays["params"],
            loss=arrays["loss"],
            accuracy=arrays["accuracy"],
            steps=arrays["steps"],
            layout=ParamLayout.from_json(meta["layout"]),
            optimizer=meta.get("optimizer", ""),
            learning_rate=float(meta.get("learning_rate", math.nan)),
            diverged=bool(meta.get("diverged", False)),
            buffers={
                k[len(_BUFFER_PREFIX) :]: v
                for k, v in arrays.items()
                if k.startswith(_BUFFER_PREFIX)
            },
        )
