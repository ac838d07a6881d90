"""Checkpoints of a long evaluation: finished chunks of points saved to one ``.npz`` file, so a job
that crashed or was killed resumes where it stopped.

The file holds every point's value, which points are done, and what identifies the job (the
plane, the grid's axes, the data, the model's layout and buffers, the precision...). A file of
another job is refused with an error that says what differs, never mixed in. Writes are atomic
(:func:`~loss_landscape_anim._io.atomic_path`): a kill mid-write keeps the previous file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Any

import numpy as np
import torch

from .._io import check_output_path, load_npz, save_npz
from ..errors import IncompatibleFileError, UnsafeFileError

__all__ = ["GridCheckpoint", "array_fingerprint"]

logger = logging.getLogger(__name__)

_KIND = "EvaluationCheckpoint"

#: A checkpoint is rewritten once the time since the last write reaches this many times what that
#: write took, so writing costs at most about 1/WRITE_RATIO of the run (a large grid's file takes
#: longer to write, and is written less often).
WRITE_RATIO = 20


def array_fingerprint(*arrays: Any) -> str:
    """A short hash of the bytes, dtypes and shapes of ``arrays`` (numpy arrays or tensors, on
    any device)."""
    digest = hashlib.sha256()
    for array in arrays:
        if isinstance(array, torch.Tensor):
            tensor = array.detach().cpu().contiguous()
            digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)  # no copy
            continue
        a = np.ascontiguousarray(np.asarray(array))
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()[:16]


class GridCheckpoint:
    """The finished points of one job (``job``: what identifies it, JSON values) of ``n_points``
    points with ``width`` values each, kept in the file ``path``.

    Only a ``writer`` writes the file (rank 0 of a distributed job)."""

    def __init__(
        self,
        path: str | os.PathLike,
        job: dict[str, Any],
        n_points: int,
        *,
        width: int = 1,
        writer: bool = True,
    ):
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"Expected checkpoint to be a file path but got {type(path).__name__}")
        self.path = check_output_path(path, "checkpoint")
        self.job = dict(job)
        self.n_points = int(n_points)
        self.width = int(width)
        self.writer = writer
        self._last_write = time.perf_counter()
        self._write_cost = 0.0
        self._dirty = False

    def resume(self) -> tuple[np.ndarray, np.ndarray]:
        """``(values (K, width) float64, done (K,) bool)`` from the file; nothing done when there
        is no file. Raises :class:`IncompatibleFileError` (its message contains "checkpoint") when
        the file belongs to another job, or is not a checkpoint."""
        values = np.full((self.n_points, self.width), np.nan)
        done = np.zeros(self.n_points, dtype=bool)
        if not self.path.exists():
            return values, done
        try:
            arrays, meta = load_npz(self.path, _KIND)
        except (IncompatibleFileError, UnsafeFileError) as exc:
            raise IncompatibleFileError(f"Cannot resume from checkpoint: {exc}") from None
        self._check_job(meta.get("job", {}), int(meta.get("n_points", -1)))
        saved_done = arrays["done"].astype(bool)
        saved = arrays["values"]
        if saved.size != self.n_points * self.width or saved_done.shape != (self.n_points,):
            raise IncompatibleFileError(
                f"The checkpoint {str(self.path)!r} holds {saved.size} values for "
                f"{saved_done.size} points, this job {self.width} values for each of "
                f"{self.n_points} points: remove it or pass another checkpoint path"
            )
        saved = saved.reshape(self.n_points, self.width)
        values[saved_done] = saved[saved_done]
        logger.info(
            "resuming from checkpoint %s: %d of %d points done",
            self.path,
            int(saved_done.sum()),
            self.n_points,
        )
        return values, saved_done

    def update(self, values: np.ndarray, done: np.ndarray) -> None:
        """Note new finished points; write the file when it is due (see :data:`WRITE_RATIO`)."""
        self._dirty = True
        if time.perf_counter() - self._last_write >= WRITE_RATIO * self._write_cost:
            self.write(values, done)

    def write(self, values: np.ndarray, done: np.ndarray) -> None:
        """Write the file now (atomically), if anything changed since the last write."""
        if not (self.writer and self._dirty):
            return
        start = time.perf_counter()
        save_npz(
            self.path,
            _KIND,
            {"values": _stored(values, self.width), "done": np.asarray(done, bool)},
            {"job": self.job, "n_points": self.n_points},
        )
        self._last_write = time.perf_counter()
        self._write_cost = self._last_write - start
        self._dirty = False

    def _check_job(self, saved: dict[str, Any], saved_points: int) -> None:
        differences = [
            _difference(key, saved.get(key, "absent"), self.job.get(key, "absent"))
            for key in sorted(set(saved) | set(self.job))
            if not _same(key, saved.get(key), self.job.get(key))
        ]
        if saved_points != self.n_points and not differences:
            differences.append(f"points: {saved_points} in the checkpoint, {self.n_points} now")
        if differences:
            raise IncompatibleFileError(
                f"The checkpoint {str(self.path)!r} belongs to another job ("
                + "; ".join(differences)
                + "): remove it or pass another checkpoint path"
            )


def _stored(values: np.ndarray, width: int) -> np.ndarray:
    """The values as written: (K,) for one value per point (as version 0.2 wrote them), else
    (K, width)."""
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(-1) if width == 1 else values


#: Keys of a job compared within rounding rather than exactly: values the model computes (a
#: resumed job may run on another machine, whose kernels round differently).
_COMPUTED = ("probe",)
#: The relative agreement of computed values that counts as the same model: far above float32
#: rounding (a few 1e-7), far below what another activation or loss changes.
_COMPUTED_RTOL = 1e-4


def _same(key: str, saved: Any, now: Any) -> bool:
    if key not in _COMPUTED or not isinstance(saved, list) or not isinstance(now, list):
        return bool(saved == now)
    if len(saved) != len(now):
        return False
    a, b = np.asarray(saved, dtype=np.float64), np.asarray(now, dtype=np.float64)
    scale = max(float(np.nanmax(np.abs(a), initial=0.0)), 1.0)
    return bool(
        np.all(np.abs(a - b) <= _COMPUTED_RTOL * scale) or np.array_equal(a, b, equal_nan=True)
    )


def _difference(key: str, saved: Any, now: Any) -> str:
    if key in _COMPUTED:
        return (
            f"{key}: the model computes other values now (another activation, loss_fn or "
            "layers than the checkpoint's model)"
        )
    return f"{key}: {saved!r} in the checkpoint, {now!r} now"
