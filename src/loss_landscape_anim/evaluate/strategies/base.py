"""The interface every evaluation strategy implements: the mean loss of a chunk of points on one
data batch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from ..data import EvalData
from ..functional import FunctionalModel
from ..points import Points

__all__ = ["Strategy", "map_points"]


class Strategy(ABC):
    """How one chunk of points is evaluated on one batch of the evaluation data.

    A strategy is chosen once per evaluator; :meth:`start` is called once per job (a set of
    points), then :meth:`batch_losses` for each chunk of points and each data batch, in any order.
    """

    #: The name users pass as ``strategy=``.
    name: ClassVar[str]
    #: True when the strategy needs points of a plane (it exploits their structure).
    needs_plane: ClassVar[bool] = False
    #: Points per chunk when the strategy sizes its own chunks (None: as many as the memory
    #: budget allows).
    chunk_points: ClassVar[int | None] = None

    def __init__(self, model: FunctionalModel, data: EvalData):
        self.model = model
        self.data = data
        self.points: Points | None = None
        self._chunk: tuple[slice, dict[str, torch.Tensor]] | None = None

    def start(self, points: Points) -> None:
        """Prepare for a job over ``points`` (precompute what all chunks share)."""
        self.points = points
        self._chunk = None

    def chunk_params(self, sl: slice) -> dict[str, torch.Tensor]:
        """Named weights (k, ...) of the points ``sl``: built once per chunk and kept for its
        other data batches (for a large model, building them costs as much as a forward pass
        over a small batch)."""
        assert self.points is not None
        if self._chunk is None or self._chunk[0] != sl:
            self._chunk = None  # free the last chunk's weights first
            self._chunk = (sl, self.model.params(self.points.weights(sl)))
        return self._chunk[1]

    @abstractmethod
    def batch_losses(self, sl: slice, b: int) -> torch.Tensor:
        """(k,) mean loss over data batch ``b`` of the points ``sl`` of the current job."""


def map_points(
    fn: Callable[..., torch.Tensor], args: tuple[Any, ...], vectorized: bool
) -> torch.Tensor:
    """``fn`` over the leading dimension of every item of ``args`` (tensors, or dicts of them):
    under ``torch.vmap`` when ``vectorized``, else one point at a time."""
    if vectorized:
        return torch.vmap(fn)(*args)
    n = _leading(args[0])
    return torch.stack([fn(*(_index(a, k) for a in args)) for k in range(n)])


def _leading(arg: Any) -> int:
    return int(next(iter(arg.values())).shape[0]) if isinstance(arg, dict) else int(arg.shape[0])


def _index(arg: Any, k: int) -> Any:
    return {name: v[k] for name, v in arg.items()} if isinstance(arg, dict) else arg[k]
