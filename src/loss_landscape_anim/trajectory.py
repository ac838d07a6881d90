"""The recorded optimisation path: ``Trajectory`` and the recorder that builds it.

A trajectory of a large model can outgrow memory (1M parameters x 2,000 steps is 8 GB in float32):
past ``memory_limit`` bytes the recorder spills rows to a disk-backed array, and the algorithms that
read it (PCA, projection) stream over it in blocks.
"""

from __future__ import annotations

import math
import os
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._io import load_npz, save_npz
from ._layout import ParamLayout

__all__ = ["Trajectory"]

_BUFFER_PREFIX = "buffer:"

#: Default number of bytes of recorded weights held in memory before spilling to disk.
DEFAULT_MEMORY_LIMIT = 512 * 2**20
#: Default bytes of one float64 block read by :func:`iter_column_blocks` / :func:`iter_row_blocks`.
DEFAULT_BLOCK_BYTES = 64 * 2**20


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Weights recorded along training, with the loss and accuracy of those same weights.

    Attributes:
        params: (T, P) float32 array; row t is every parameter of the model, flattened in
            ``model.parameters()`` order, after ``steps[t]`` optimizer steps. Row 0 holds the initial
            weights, the last row the weights training ended with. May be a read-only disk-backed
            ``np.memmap`` for large runs.
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

    def state_dict(self, t: int = -1) -> dict[str, torch.Tensor]:
        """The weights of row ``t`` as a ``state_dict`` of the parameters (new tensors)."""
        flat = torch.from_numpy(np.array(self.params[t], dtype=np.float32))
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


def iter_column_blocks(
    params: np.ndarray, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, params[:, start:stop])`` as float64 copies, ~``block_bytes`` each.

    A spilled trajectory is read from its file (see :func:`read_columns`), so reading the whole
    array keeps the resident memory at about one block.
    """
    T, P = params.shape
    width = max(1, block_bytes // (8 * max(T, 1)))
    for start in range(0, P, width):
        stop = min(P, start + width)
        yield start, stop, read_columns(params, start, stop)


def read_columns(params: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``params[:, start:stop]`` as a float64 copy. A spilled trajectory is read with one
    ``pread`` per row into a fresh buffer, so no page of the file is mapped into this process
    (through the memory map, each row's slice would map its neighbourhood too)."""
    fd = getattr(params, "_spill_fd", None)
    if fd is None:
        return np.array(params[:, start:stop], dtype=np.float64)
    T, P = params.shape
    out = np.empty((T, stop - start), dtype=np.float32)
    for t in range(T):
        os.preadv(fd, [memoryview(out[t]).cast("B")], 4 * (t * P + start))
    return out.astype(np.float64)


def iter_row_blocks(
    params: np.ndarray, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, params[start:stop])`` as float64 copies, ~``block_bytes`` each."""
    T, P = params.shape
    height = max(1, block_bytes // (8 * max(P, 1)))
    for start in range(0, T, height):
        stop = min(T, start + height)
        fd = getattr(params, "_spill_fd", None)
        if fd is None:
            yield start, stop, np.array(params[start:stop], dtype=np.float64)
            continue
        rows = np.empty((stop - start, P), dtype=np.float32)
        os.preadv(fd, [rows.data.cast("B")], 4 * start * P)
        yield start, stop, rows.astype(np.float64)


@dataclass
class TrajectoryRecorder:
    """Collects flat weight rows in one preallocated block; past ``memory_limit`` bytes, spills
    them to a temporary file and appends there.

    One block (grown by doubling up to the limit) rather than a list of row arrays: freeing many
    separate large rows leaves the allocator holding their memory after the spill."""

    n_params: int
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    spill_dir: str | os.PathLike | None = None
    expected_rows: int | None = None
    _block: np.ndarray | None = None
    _file: Any = None
    _count: int = 0
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)

    @property
    def _limit_rows(self) -> int:
        return max(1, self.memory_limit // (4 * self.n_params))

    def append(self, flat: torch.Tensor, loss: float, accuracy: float, step: int) -> None:
        if self._file is None and self._count == self._limit_rows:
            self._spill()
        if self._file is not None:
            self._file.write(flat.detach().to("cpu", torch.float32).contiguous().numpy().data)
        else:
            block = self._room()
            torch.from_numpy(block[self._count]).copy_(flat.detach().reshape(-1))
        self._count += 1
        self.loss.append(float(loss))
        self.accuracy.append(float(accuracy))
        self.steps.append(int(step))

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        """Drop what was recorded (the spill file goes with it); for a run that failed."""
        if self._file is not None:
            self._file.close()
        self._file = self._block = None

    def _room(self) -> np.ndarray:
        """The in-memory block, with room for one more row."""
        if self._block is None or self._count == self._block.shape[0]:
            wanted = (
                self.expected_rows
                if self._block is None and self.expected_rows
                else 2 * self._count
            )
            rows = min(self._limit_rows, max(wanted, self._count + 1, 16))
            block = np.empty((rows, self.n_params), dtype=np.float32)
            if self._count:
                block[: self._count] = self._block[: self._count]  # type: ignore[index]
            self._block = block
        return self._block

    def _spill(self) -> None:
        # Unlinked at once: the open file keeps it, and it disappears with the file object,
        # also when training fails half-way.
        fd, path = tempfile.mkstemp(prefix="trajectory-", suffix=".f32", dir=self.spill_dir)
        os.unlink(path)
        self._file = os.fdopen(fd, "w+b")
        if self._block is not None:
            self._file.write(self._block[: self._count].data)  # a view: no copy of the block
        self._block = None

    def params(self) -> np.ndarray:
        """The (T, P) rows: in memory, or a read-only memmap of the spill file."""
        if self._file is None:
            if self._block is None:
                return np.zeros((0, self.n_params), np.float32)
            return (
                self._block[: self._count].copy()
                if self._count < self._block.shape[0] // 2
                else self._block[: self._count]
            )
        self._file.flush()
        array = np.memmap(
            self._file, dtype=np.float32, mode="r", shape=(self._count, self.n_params)
        )
        array._spill_fd = self._file.fileno()  # type: ignore[attr-defined]
        weakref.finalize(array, self._file.close)
        return array
