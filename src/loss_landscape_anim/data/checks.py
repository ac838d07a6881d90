"""Checks of the data before any training: non-finite inputs or float targets are named in a
:class:`~loss_landscape_anim.errors.DataError` (which tensor, how many values, the first example),
instead of surfacing later as a diverged run or a grid of NaN."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import TensorDataset

from ..errors import DataError
from .batches import Inputs, input_tensors

__all__ = [
    "check_finite_batch",
    "check_finite_data",
    "check_finite_inputs",
    "check_finite_tensor",
    "exposed_tensors",
]


def exposed_tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The ``(X, y)`` tensors behind ``data`` when it holds them without being iterated: a
    ``TensorDataset``, an ``(X, y)`` pair, or a data module / ``DataLoader`` whose ``dataset`` is a
    ``TensorDataset``. None otherwise (a loader over any other dataset)."""
    dataset = getattr(data, "dataset", data)
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        return dataset.tensors[0], dataset.tensors[1]
    if isinstance(data, (tuple, list)) and len(data) == 2:
        try:
            X, y = (torch.as_tensor(v) for v in data)
        except (TypeError, ValueError, RuntimeError):
            return None  # as_dataloader explains what it accepts
        return X, y
    return None


def check_finite_tensor(tensor: torch.Tensor, name: str, *, batch: int | None = None) -> None:
    """Raise :class:`DataError` when a floating ``tensor`` (examples along dimension 0) holds NaN
    or infinity, naming ``name``, how many values and the first example that holds one (its row
    in training batch ``batch``, when given)."""
    if not (tensor.is_floating_point() or tensor.is_complex()) or tensor.numel() == 0:
        return
    bad = ~torch.isfinite(tensor)
    count = int(bad.sum())
    if not count:
        return
    per_example = max(1, tensor[0].numel()) if tensor.ndim else 1
    first = int(bad.reshape(-1).nonzero()[0, 0]) // per_example
    if batch is None:
        where = f"example {first}"
    else:
        where = f"row {first} of training batch {batch} of the first epoch (counting from 0)"
    raise DataError(
        f"The {name} hold {count} non-finite value{'s' if count > 1 else ''} (NaN or "
        f"infinity); the first is in {where}. Remove or replace them: the loss cannot be "
        "computed on them"
    )


def check_finite_inputs(inputs: Inputs, name: str, *, batch: int | None = None) -> None:
    """:func:`check_finite_tensor` of each tensor of ``inputs`` (named inputs by their name)."""
    for key, tensor in input_tensors(inputs):
        label = f"{name} {key!r}" if isinstance(inputs, dict) else name
        check_finite_tensor(tensor, label, batch=batch)


def check_finite_data(data: Any) -> bool:
    """Check the inputs and float targets of ``data`` when it exposes them as tensors (see
    :func:`exposed_tensors`); True when checked, False when only iterating would tell."""
    tensors = exposed_tensors(data)
    if tensors is None:
        return False
    check_finite_tensor(tensors[0], "inputs")
    check_finite_tensor(tensors[1], "targets")
    return True


def check_finite_batch(x: Inputs, y: torch.Tensor, batch: int) -> None:
    """:func:`check_finite_tensor` of one training batch (for data seen only by iterating)."""
    check_finite_inputs(x, "inputs", batch=batch)
    check_finite_tensor(y, "targets", batch=batch)
