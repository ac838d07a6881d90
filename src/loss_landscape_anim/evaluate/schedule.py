"""Scheduling: which points are evaluated in which chunk, with chunks outermost.

Each chunk of points is evaluated completely (over every data batch, or every Lanczos step)
before the next chunk starts, so a chunk's values are final as soon as it is returned: a
checkpoint can store it, a rank can own it, and a resumed job can skip it. The loss evaluator and
the curvature evaluator both run here: a job is a function from a chunk of points to their
values, ``width`` of them per point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .._runtime import progress_bar
from .checkpoint import GridCheckpoint
from .data import EvalData
from .ranks import Ranks, SingleProcess
from .strategies.base import Strategy

__all__ = ["chunk_losses", "chunk_slices", "collect", "loss_job"]

#: A job: the values (k, width) float64 of the points of a chunk.
Job = Callable[[slice], torch.Tensor]


def chunk_slices(n_points: int, chunk: int) -> list[slice]:
    """The chunks of ``n_points`` points, ``chunk`` each (the last may be smaller)."""
    return [slice(lo, min(lo + chunk, n_points)) for lo in range(0, n_points, chunk)]


def chunk_losses(strategy: Strategy, data: EvalData, sl: slice) -> torch.Tensor:
    """The mean loss (k,) float64 over all the data of the points ``sl`` of the current job,
    accumulated in float64 batch by batch, each batch's mean weighted by its terms (its
    examples, or its label tokens for a token loss: :meth:`~.data.EvalData.weight`)."""
    total: torch.Tensor | None = None
    for b in range(data.n_batches):
        losses = strategy.batch_losses(sl, b)
        part = losses.double() * data.weight(b)
        total = part if total is None else total + part
    assert total is not None
    return total / data.total_weight


def loss_job(strategy: Strategy, data: EvalData) -> Job:
    """The job of the mean loss at the points the strategy was started on."""
    return lambda sl: chunk_losses(strategy, data, sl)[:, None]


def collect(
    job: Job,
    n_points: int,
    chunk: int,
    *,
    width: int = 1,
    start: Callable[[], None] | None = None,
    progress: bool = False,
    desc: str = "",
    checkpoint: GridCheckpoint | None = None,
    ranks: Ranks | None = None,
    job_arguments: dict[str, Any] | None = None,
) -> np.ndarray:
    """The values (K, ``width``) float64 of ``job`` at all ``n_points`` points, in chunks of
    ``chunk``; ``start()`` is called first, unless every point is in the checkpoint already.

    With a ``checkpoint``, the points it holds are taken from it and not evaluated again, and
    finished chunks are written to it as they complete (and when the run fails). With ``ranks``,
    the chunks still to do are dealt round by round, one to each rank, and every rank returns
    every value, once every rank has been seen to ask for the same job (``job_arguments`` and the
    points' count and chunks). The progress bar (rank 0's) counts resumed points as done."""
    ranks = ranks or SingleProcess()
    ranks.check_same_job({**(job_arguments or {}), "points": n_points, "chunk": chunk})
    values = np.full((n_points, width), np.nan)
    done = np.zeros(n_points, dtype=bool)
    if checkpoint is not None:
        values, done = ranks.from_first(checkpoint.resume, (n_points, width))
    todo = [sl for sl in chunk_slices(n_points, chunk) if not done[sl].all()]
    if todo and start is not None:
        start()
    enabled = progress and ranks.rank == 0
    with progress_bar(
        total=n_points, initial=int(done.sum()), enabled=enabled, desc=desc, unit="point"
    ) as bar:
        try:
            for first in range(0, len(todo), ranks.size):
                chunks = todo[first : first + ranks.size]
                mine = job(chunks[ranks.rank]) if ranks.rank < len(chunks) else None
                shared = ranks.share_round(chunks, mine, chunk, width)
                for sl, got in zip(chunks, shared, strict=True):
                    bar.update(int((~done[sl]).sum()))
                    values[sl] = got
                    done[sl] = True
                if checkpoint is not None:
                    checkpoint.update(values, done)
        finally:
            if checkpoint is not None:
                checkpoint.write(values, done)
    return values
