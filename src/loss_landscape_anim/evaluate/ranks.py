"""The processes that share an evaluation: one process alone, or the ranks of a
``torch.distributed`` job (for example one launched with ``torchrun``).

When a process group is initialised, an evaluation's chunks of points are dealt round by round,
one to each rank: each rank evaluates only its own chunks, on its own device (``cuda:LOCAL_RANK``
where there are GPUs, else the CPU with the gloo backend), the values are all-gathered after every
round, and every rank returns every value. Rank 0 reads and writes the checkpoint; its plane and
its model's buffers are the ones every rank evaluates, and the evaluation data must be the same
on every rank (checked). Every rank must make the same calls in the same order, as the ranks of
one program do.

``torch.distributed`` is imported only when used.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import torch

from .._runtime import is_initialized
from ..errors import DataError, IncompatibleFileError

__all__ = [
    "ProcessGroupRanks",
    "Ranks",
    "SingleProcess",
    "launched_group",
    "process_group_ranks",
    "rank_device",
]

#: Errors rank 0 can pass on to the other ranks as themselves; others arrive as RuntimeError.
_KNOWN_ERRORS: dict[str, type[Exception]] = {
    e.__name__: e for e in (IncompatibleFileError, DataError, ValueError, FileNotFoundError)
}


class Ranks(Protocol):
    """The processes sharing a job: in each round, rank r evaluates the r-th chunk of the round,
    and every rank receives every chunk's values."""

    rank: int
    size: int

    def share_round(
        self, chunks: list[slice], mine: torch.Tensor | None, chunk: int, width: int
    ) -> list[np.ndarray]:
        """The values (k, ``width``) of each of ``chunks`` (at most ``size``), given this rank's
        own (None when the round has no chunk for it); ``chunk`` is the largest chunk's size."""
        ...

    def from_first(
        self, read: Callable[[], tuple[np.ndarray, np.ndarray]], shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``read()`` (values of ``shape`` and done, one row per point) run on rank 0, and its
        result (or its error) given to every rank."""
        ...

    def broadcast_array(self, array: np.ndarray) -> np.ndarray:
        """Rank 0's ``array`` (same shape and dtype on every rank)."""
        ...

    def check_same_job(self, job: dict[str, Any]) -> None:
        """Raise ``ValueError`` unless every rank asks for the same ``job``."""
        ...


class SingleProcess:
    """One process: every chunk is its own."""

    rank = 0
    size = 1

    def share_round(
        self, chunks: list[slice], mine: torch.Tensor | None, chunk: int, width: int
    ) -> list[np.ndarray]:
        assert mine is not None
        return [mine.reshape(mine.shape[0], width).cpu().numpy()]

    def from_first(
        self, read: Callable[[], tuple[np.ndarray, np.ndarray]], shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        return read()

    def broadcast_array(self, array: np.ndarray) -> np.ndarray:
        return array

    def check_same_job(self, job: dict[str, Any]) -> None:
        return None


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def rank_device() -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` where there are GPUs, else the CPU."""
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local % torch.cuda.device_count())
    return torch.device("cpu")


def process_group_ranks(distributed: Any = None) -> ProcessGroupRanks | None:
    """The ranks to share evaluations with: those of the initialised process group when
    ``distributed`` is None (automatic) or True, None for one process (``distributed=False``,
    no group, or a group of one)."""
    if distributed is not None and not isinstance(distributed, bool):
        raise ValueError(f"Expected distributed to be True, False or None but got {distributed!r}")
    if distributed is False:
        return None
    if not is_initialized():
        if distributed:
            raise ValueError(
                "distributed=True needs an initialised torch.distributed process group (call "
                "torch.distributed.init_process_group(), e.g. under torchrun) but there is none"
            )
        return None
    ranks = ProcessGroupRanks()
    return ranks if ranks.size > 1 else None


class ProcessGroupRanks:
    """The default process group, seen as the ranks that share a job (see :class:`Ranks`)."""

    def __init__(self) -> None:
        dist = _dist()
        self.rank = int(dist.get_rank())
        self.size = int(dist.get_world_size())
        nccl = dist.get_backend() == "nccl"
        self.device = torch.device("cuda", torch.cuda.current_device()) if nccl else None
        self.device = self.device or torch.device("cpu")

    def share_round(
        self, chunks: list[slice], mine: torch.Tensor | None, chunk: int, width: int
    ) -> list[np.ndarray]:
        """All-gather this round's chunk values (k, width); rank r's are those of ``chunks[r]``."""
        buffer = torch.full((chunk, width), math.nan, dtype=torch.float64, device=self.device)
        if mine is not None:
            buffer[: mine.shape[0]] = mine.reshape(mine.shape[0], width).to(
                self.device, torch.float64
            )
        parts = [torch.empty_like(buffer) for _ in range(self.size)]
        _dist().all_gather(parts, buffer)
        return [parts[r][: sl.stop - sl.start].cpu().numpy() for r, sl in enumerate(chunks)]

    def from_first(
        self, read: Callable[[], tuple[np.ndarray, np.ndarray]], shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``read()`` (values of ``shape``, done (K,)) run on rank 0, its result or its error
        given to every rank."""
        values = np.full(shape, np.nan)
        done = np.zeros(shape[0], dtype=bool)
        failure: BaseException | None = None
        message = ""
        if self.rank == 0:
            try:
                values, done = read()
            except Exception as exc:
                failure, message = exc, f"{type(exc).__name__}:{exc}"
        message = self.broadcast_text(message)
        if failure is not None:
            raise failure
        if message:
            name, _, text = message.partition(":")
            raise _KNOWN_ERRORS.get(name, RuntimeError)(f"{text} (raised on rank 0)")
        return self.broadcast_array(values), self.broadcast_array(done).astype(bool)

    def broadcast_(self, tensor: torch.Tensor, source: int = 0) -> None:
        """Overwrite ``tensor`` with rank ``source``'s, in place."""
        moved = tensor.detach().to(self.device).contiguous()
        _dist().broadcast(moved, source)
        if moved is not tensor:
            with torch.no_grad():
                tensor.copy_(moved)

    def broadcast_array(self, array: np.ndarray) -> np.ndarray:
        """Rank 0's ``array`` (same shape and dtype on every rank)."""
        a = np.ascontiguousarray(array)
        carried = a.astype(np.uint8) if a.dtype == bool else a
        tensor = torch.from_numpy(carried.copy())
        self.broadcast_(tensor)
        return tensor.numpy().astype(a.dtype, copy=False)

    def broadcast_text(self, text: str, source: int = 0) -> str:
        """Rank ``source``'s ``text``."""
        data = text.encode()
        length = torch.tensor([len(data)], dtype=torch.int64)
        self.broadcast_(length, source)
        if not length.item():
            return ""
        payload = torch.tensor(list(data), dtype=torch.uint8)
        if self.rank != source:
            payload = torch.zeros(int(length.item()), dtype=torch.uint8)
        self.broadcast_(payload, source)
        return bytes(payload.numpy()).decode()

    def check_same_job(self, job: dict[str, Any]) -> None:
        """Raise ``ValueError`` on every rank unless every rank asks for the same ``job`` (JSON
        values: the points' count, the chunks, the grid's resolution and margin...), naming what
        differs: ranks that asked for other points would return values that do not match their
        axes, or fail in a collective."""
        text = json.dumps(job, sort_keys=True, default=str)
        first = json.loads(self.broadcast_text(text))
        differs = torch.tensor([int(first != json.loads(text))], device=self.device)
        flags = [torch.empty_like(differs) for _ in range(self.size)]
        _dist().all_gather(flags, differs)
        odd = [r for r, flag in enumerate(flags) if int(flag.item())]
        if not odd:
            return
        other = json.loads(self.broadcast_text(text, odd[0]))
        keys = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
        details = "; ".join(f"{k}: {first.get(k)!r} on rank 0, {other.get(k)!r}" for k in keys)
        raise ValueError(
            f"Expected every rank to make the same call but rank {odd[0]} asked for another job "
            f"({details}): under torch.distributed every rank must call with the same arguments"
        )

    def check_same(self, what: str, fingerprint: str) -> None:
        """Raise ``DataError`` on every rank unless every rank has the same ``fingerprint`` (a
        short text) of ``what``."""
        data = fingerprint.encode()[:64].ljust(64, b"\0")
        mine = torch.tensor(list(data), dtype=torch.uint8, device=self.device)
        parts = [torch.empty_like(mine) for _ in range(self.size)]
        _dist().all_gather(parts, mine)
        texts = [bytes(p.cpu().numpy()).rstrip(b"\0").decode() for p in parts]
        differing = [r for r, t in enumerate(texts) if t != texts[0]]
        if differing:
            raise DataError(
                f"Expected the same {what} on every rank but rank {differing[0]} has "
                f"{texts[differing[0]]!r} and rank 0 {texts[0]!r}: give every rank the whole "
                "evaluation data (not a DistributedSampler's share); the ranks split the points"
            )


@contextlib.contextmanager
def launched_group(device: str | None) -> Iterator[str | None]:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) with no process group yet: one
    for the block (nccl for a CUDA ``device``, each rank on ``cuda:LOCAL_RANK``; gloo otherwise),
    destroyed afterwards. Yields the device this rank uses (``device`` itself otherwise)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_initialized():
        yield device
        return
    dist = _dist()
    cuda = device is not None and str(device).startswith("cuda") and torch.cuda.is_available()
    if cuda:
        device = str(rank_device())
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        yield device
    finally:
        dist.destroy_process_group()
