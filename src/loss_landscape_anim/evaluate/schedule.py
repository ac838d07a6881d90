"""Scheduling: which points are evaluated in which chunk, with chunks outermost.

Each chunk of points runs over every data batch before the next chunk starts, so a chunk's values
are final as soon as it is yielded: a checkpoint can store it, a rank can own it, and a resumed job
can skip it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .._runtime import progress_bar
from .data import EvalData
from .strategies.base import Strategy

__all__ = ["chunk_slices", "collect", "evaluate_chunks"]


def chunk_slices(n_points: int, chunk: int) -> list[slice]:
    """The chunks of ``n_points`` points, ``chunk`` each (the last may be smaller)."""
    return [slice(lo, min(lo + chunk, n_points)) for lo in range(0, n_points, chunk)]


def evaluate_chunks(
    strategy: Strategy, data: EvalData, chunks: list[slice]
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield ``(chunk, mean loss over all the data)`` for each chunk, in order, as each finishes.

    The mean is accumulated in float64, batch by batch weighted by the batch's size."""
    for sl in chunks:
        total: torch.Tensor | None = None
        for b in range(data.n_batches):
            xb, _ = data.batch(b)
            part = strategy.batch_losses(sl, b).double() * xb.shape[0]
            total = part if total is None else total + part
        assert total is not None
        yield sl, total / data.n_examples


def collect(
    strategy: Strategy,
    data: EvalData,
    n_points: int,
    chunk: int,
    *,
    progress: bool = False,
    desc: str = "",
) -> np.ndarray:
    """The mean loss (K,) float64 of all ``n_points`` points of the strategy's current job."""
    out = np.empty(n_points, dtype=np.float64)
    chunks = chunk_slices(n_points, chunk)
    with progress_bar(total=n_points, enabled=progress, desc=desc, unit="point") as bar:
        for sl, values in evaluate_chunks(strategy, data, chunks):
            out[sl] = values.cpu().numpy()
            bar.update(sl.stop - sl.start)
    return out
