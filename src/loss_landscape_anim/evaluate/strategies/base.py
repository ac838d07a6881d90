"""The interface every evaluation strategy implements: the mean loss of a chunk of points on one
data batch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..data import EvalData
from ..functional import FunctionalModel
from ..points import Points
from ..probes import SequentialSplit

__all__ = ["Setting", "Strategy", "map_points"]


@dataclass(frozen=True, eq=False)
class Setting:
    """What every strategy is built from: the model and the data (in batches), the model cut
    after its first layer (None: it cannot be), whether points are mapped with ``torch.vmap`` by
    default, the first-layer cache budget, how many examples BatchNorm statistics are recomputed
    from, and a probe of whether ``torch.vmap`` runs the model at all (run only if asked: it
    costs a vmapped forward pass)."""

    model: FunctionalModel
    data: EvalData
    split: SequentialSplit | None
    vectorized: bool
    cache_bytes: int
    bn_examples: int
    probe_vmap: Callable[[], bool]

    @property
    def vmap_works(self) -> bool:
        return self.probe_vmap()


class Strategy(ABC):
    """How one chunk of points is evaluated on one batch of the evaluation data.

    A strategy is chosen once per evaluator from the table in :mod:`.` (each class declares what
    it needs through :meth:`refusal`); :meth:`start` is called once per job (a set of points),
    then :meth:`batch_losses` for each chunk of points and each data batch, in any order.
    """

    #: The name users pass as ``strategy=``.
    name: ClassVar[str]
    #: True when the strategy needs points of a plane (it exploits their structure).
    needs_plane: ClassVar[bool] = False
    #: True when ``strategy="auto"`` may choose it (where it applies and is preferred).
    auto: ClassVar[bool] = True
    #: Whether points are mapped with ``torch.vmap``: always (True), never (False), or as the
    #: setting says (None).
    mapping: ClassVar[bool | None] = None
    #: Points per chunk when the strategy sizes its own chunks (None: as many as the memory
    #: budget allows).
    chunk_points: ClassVar[int | None] = None

    def __init__(self, setting: Setting):
        self.setting = setting
        self.model = setting.model
        self.data = setting.data
        self.vectorized = setting.vectorized if self.mapping is None else self.mapping
        self.points: Points | None = None
        self._chunk: tuple[slice, dict[str, torch.Tensor]] | None = None

    @classmethod
    def refusal(cls, setting: Setting) -> str | None:
        """Why the strategy cannot evaluate this model (an error message naming what it needs
        and what to use instead), or None when it can."""
        return None

    @classmethod
    def preferred(cls, setting: Setting) -> bool:
        """Whether ``strategy="auto"`` should take it where it applies."""
        return True

    @property
    def serial(self) -> bool:
        """Whether the points of a chunk are evaluated one at a time (a chunk then holds one
        point's activations at a time)."""
        return not self.vectorized

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
