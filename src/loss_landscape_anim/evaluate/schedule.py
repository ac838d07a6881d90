"""Scheduling: which points are evaluated in which chunk, with chunks outermost.

Each chunk of points runs over every data batch before the next chunk starts, so a chunk's values
are final as soon as it is yielded: a checkpoint can store it, a rank can own it, and a resumed job
can skip it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
import torch

from .._runtime import progress_bar
from .checkpoint import GridCheckpoint
from .data import EvalData
from .points import Points
from .strategies.base import Strategy

__all__ = ["Ranks", "SingleProcess", "chunk_slices", "collect", "evaluate_chunks"]


class Ranks(Protocol):
    """The processes sharing a job (see :mod:`loss_landscape_anim.integrations.distributed`):
    in each round, rank r evaluates the r-th chunk of the round, and every rank receives every
    chunk's values."""

    rank: int
    size: int

    def share_round(
        self, chunks: list[slice], mine: torch.Tensor | None, chunk: int
    ) -> list[np.ndarray]:
        """The values of each of ``chunks`` (at most ``size``), given this rank's own (None when
        the round has no chunk for it); ``chunk`` is the largest chunk's size."""
        ...

    def from_first(
        self, read: Callable[[], tuple[np.ndarray, np.ndarray]], n_points: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``read()`` (two arrays of ``n_points``) run on rank 0, and its result (or its error)
        given to every rank."""
        ...


class SingleProcess:
    """One process: every chunk is its own."""

    rank = 0
    size = 1

    def share_round(
        self, chunks: list[slice], mine: torch.Tensor | None, chunk: int
    ) -> list[np.ndarray]:
        assert mine is not None
        return [mine.cpu().numpy()]

    def from_first(
        self, read: Callable[[], tuple[np.ndarray, np.ndarray]], n_points: int
    ) -> tuple[np.ndarray, np.ndarray]:
        return read()


def chunk_slices(n_points: int, chunk: int) -> list[slice]:
    """The chunks of ``n_points`` points, ``chunk`` each (the last may be smaller)."""
    return [slice(lo, min(lo + chunk, n_points)) for lo in range(0, n_points, chunk)]


def evaluate_chunks(
    strategy: Strategy, data: EvalData, chunks: list[slice]
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield ``(chunk, mean loss over all the data)`` for each chunk, in order, as each finishes.

    The mean is accumulated in float64, batch by batch weighted by the batch's size."""
    for sl in chunks:
        yield sl, chunk_losses(strategy, data, sl)


def chunk_losses(strategy: Strategy, data: EvalData, sl: slice) -> torch.Tensor:
    """The mean loss (k,) float64 over all the data of the points ``sl`` of the current job."""
    total: torch.Tensor | None = None
    for b in range(data.n_batches):
        xb, _ = data.batch(b)
        part = strategy.batch_losses(sl, b).double() * xb.shape[0]
        total = part if total is None else total + part
    assert total is not None
    return total / data.n_examples


def collect(
    strategy: Strategy,
    data: EvalData,
    points: Points,
    chunk: int,
    *,
    progress: bool = False,
    desc: str = "",
    checkpoint: GridCheckpoint | None = None,
    ranks: Ranks | None = None,
) -> np.ndarray:
    """The mean loss (K,) float64 of all the ``points``, evaluated by ``strategy`` (started here
    on them, unless every point is in the checkpoint already).

    With a ``checkpoint``, the points it holds are taken from it and not evaluated again, and
    finished chunks are written to it as they complete (and when the run fails). With ``ranks``,
    the chunks still to do are dealt round by round, one to each rank, and every rank returns
    every value. The progress bar (rank 0's) counts resumed points as done."""
    ranks = ranks or SingleProcess()
    n_points = len(points)
    values = np.full(n_points, np.nan)
    done = np.zeros(n_points, dtype=bool)
    if checkpoint is not None:
        values, done = ranks.from_first(checkpoint.resume, n_points)
    todo = [sl for sl in chunk_slices(n_points, chunk) if not done[sl].all()]
    if todo:
        strategy.start(points)
    enabled = progress and ranks.rank == 0
    with progress_bar(
        total=n_points, initial=int(done.sum()), enabled=enabled, desc=desc, unit="point"
    ) as bar:
        try:
            for start in range(0, len(todo), ranks.size):
                chunks = todo[start : start + ranks.size]
                mine = None
                if ranks.rank < len(chunks):
                    mine = chunk_losses(strategy, data, chunks[ranks.rank])
                for sl, got in zip(chunks, ranks.share_round(chunks, mine, chunk), strict=True):
                    bar.update(int((~done[sl]).sum()))
                    values[sl] = got
                    done[sl] = True
                if checkpoint is not None:
                    checkpoint.update(values, done)
        finally:
            if checkpoint is not None:
                checkpoint.write(values, done)
    return values
