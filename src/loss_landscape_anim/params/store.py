"""Row storage for recorded weights: one preallocated block in memory, spilled to a file past a limit.

A trajectory of a large model can outgrow memory (1M parameters x 2,000 steps is 8 GB in float32):
past ``memory_limit`` bytes the rows go to an unlinked temporary file, and the result is a read-only
:class:`SpilledRows` memory map that owns that file. The readers in :mod:`.blocks` read such an
array with ``pread`` instead of through the map.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from typing import Any, BinaryIO

import numpy as np
import torch

__all__ = ["DEFAULT_MEMORY_LIMIT", "RowStore", "SpilledRows", "check_spill_dir"]

#: Default number of bytes of rows held in memory before spilling to disk.
DEFAULT_MEMORY_LIMIT = 512 * 2**20


def check_spill_dir(spill_dir: Any, name: str = "spill_dir") -> str | os.PathLike | None:
    """``spill_dir`` if it is None or an existing folder a file can be created in: checked when a
    recording starts rather than at its first spill, which can come hours into training."""
    if spill_dir is None:
        return None
    if not isinstance(spill_dir, (str, os.PathLike)):
        raise TypeError(
            f"Expected {name} to be a folder path (str or os.PathLike) or None but got "
            f"{type(spill_dir).__name__}"
        )
    if not os.path.isdir(spill_dir):
        what = "is not a folder" if os.path.exists(spill_dir) else "does not exist"
        raise ValueError(f"Expected {name} to be an existing folder but {str(spill_dir)!r} {what}")
    try:
        tempfile.TemporaryFile(dir=os.fsdecode(spill_dir)).close()
    except OSError as exc:
        raise ValueError(
            f"Expected {name} to be a folder files can be created in but creating one in "
            f"{str(spill_dir)!r} failed: {exc.strerror or exc}"
        ) from None
    return spill_dir


class SpillFile:
    """An unlinked temporary file of rows, closed (and so freed) once nothing refers to it, or on
    :meth:`close`."""

    def __init__(self, spill_dir: str | os.PathLike | None = None):
        # Unlinked at once: the open file keeps it, and it disappears with the file object,
        # also when a run fails half-way.
        fd, path = tempfile.mkstemp(prefix="trajectory-", suffix=".rows", dir=spill_dir)
        os.unlink(path)
        self.handle: BinaryIO = os.fdopen(fd, "w+b")
        self._finalizer = weakref.finalize(self, self.handle.close)

    def fileno(self) -> int:
        return self.handle.fileno()

    def close(self) -> None:
        self._finalizer()


class SpilledRows(np.memmap):
    """A read-only (T, P) memory map of a spill file, holding the open file in ``file``: the
    (unlinked) file is closed and its space freed once neither this array nor the store that wrote
    it holds it. ``file`` is set on the whole array only; its views and slices are plain memory
    maps with ``file`` None (the map stays valid without the file)."""

    file: SpillFile | None = None

    def __array_finalize__(self, obj: Any) -> None:
        super().__array_finalize__(obj)
        self.file = None

    @classmethod
    def open(cls, file: SpillFile, dtype: np.dtype, shape: tuple[int, int]) -> SpilledRows:
        array = cls(file.handle, dtype=dtype, mode="r", shape=shape)
        array.file = file
        return array


class RowStore:
    """Appends flat rows of ``n_params`` values of ``dtype``: into one block grown by doubling up
    to ``memory_limit`` bytes, then into a spill file.

    One block rather than a list of row arrays: freeing many separate large rows leaves the
    allocator holding their memory after the spill."""

    def __init__(
        self,
        n_params: int,
        dtype: np.dtype | type = np.float32,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        spill_dir: str | os.PathLike | None = None,
        expected_rows: int | None = None,
    ):
        self.n_params = n_params
        self.dtype = np.dtype(dtype)
        self.memory_limit = memory_limit
        self.spill_dir = check_spill_dir(spill_dir)
        self.expected_rows = expected_rows
        self._block: np.ndarray | None = None
        self._file: SpillFile | None = None
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def spilled(self) -> bool:
        return self._file is not None

    @property
    def _limit_rows(self) -> int:
        return max(1, self.memory_limit // (self.dtype.itemsize * self.n_params))

    def append(self, flat: torch.Tensor) -> None:
        """Copy ``flat`` (P,) in as the next row, converted to the store's dtype."""
        if self._file is None and self._count == self._limit_rows:
            self._spill()
        if self._file is not None:
            row = flat.detach().to("cpu", _torch_dtype(self.dtype)).contiguous().numpy()
            self._file.handle.write(row.data)
        else:
            block = self._room()
            torch.from_numpy(block[self._count]).copy_(flat.detach().reshape(-1))
        self._count += 1

    def close(self) -> None:
        """Drop what was stored (the spill file goes with it); for a run that failed."""
        if self._file is not None:
            self._file.close()
        self._file = self._block = None

    def rows(self) -> np.ndarray:
        """The (T, P) rows: in memory, or a read-only :class:`SpilledRows` of the spill file."""
        if self._file is None:
            if self._block is None:
                return np.zeros((0, self.n_params), self.dtype)
            if self._count < self._block.shape[0] // 2:
                return self._block[: self._count].copy()
            return self._block[: self._count]
        self._file.handle.flush()
        return SpilledRows.open(self._file, self.dtype, (self._count, self.n_params))

    def _room(self) -> np.ndarray:
        """The in-memory block, with room for one more row."""
        if self._block is None or self._count == self._block.shape[0]:
            wanted = (
                self.expected_rows
                if self._block is None and self.expected_rows
                else 2 * self._count
            )
            rows = min(self._limit_rows, max(wanted, self._count + 1, 16))
            block = np.empty((rows, self.n_params), dtype=self.dtype)
            if self._block is not None and self._count:
                block[: self._count] = self._block[: self._count]
            self._block = block
        return self._block

    def _spill(self) -> None:
        self._file = SpillFile(self.spill_dir)
        if self._block is not None:
            self._file.handle.write(self._block[: self._count].data)  # a view: no copy
        self._block = None


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype)).dtype
