"""Evaluation strategies: how one chunk of points is evaluated on one data batch. One strategy per
module, all behind :class:`~.base.Strategy`, chosen from :data:`TABLE` by :func:`choose_strategy`:
each strategy declares what it needs (:meth:`~.base.Strategy.refusal`), whether it needs points
of a plane, and whether ``"auto"`` may take it."""

from __future__ import annotations

from .base import Setting, Strategy
from .bn_recompute import BNRecompute
from .first_layer import FirstLayer
from .linear_chain import LinearChain
from .per_point import PerPoint
from .relu_regions import ReluRegions
from .vmapped import Vmapped

__all__ = ["STRATEGIES", "TABLE", "Setting", "Strategy", "choose_strategy"]

#: Every strategy, fastest first: ``"auto"`` takes the first that applies and is preferred.
TABLE: tuple[type[Strategy], ...] = (
    ReluRegions,
    LinearChain,
    FirstLayer,
    Vmapped,
    PerPoint,
    BNRecompute,
)
#: The names users may pass as ``strategy=`` (BatchNorm recomputation is ``bn="recompute"``).
STRATEGIES = tuple(cls.name for cls in TABLE if cls.auto)
_BY_NAME = {cls.name: cls for cls in TABLE}


def choose_strategy(name: str, setting: Setting, *, plane: bool) -> Strategy:
    """The strategy ``name`` built on ``setting``, or for ``"auto"`` the first of :data:`TABLE`
    that applies. ``plane`` says whether the points lie on a plane: for arbitrary weight vectors
    a plane strategy gives way to the general one that ``"auto"`` takes. Raises ``ValueError``
    with the strategy's own refusal when it cannot evaluate the model."""
    if name == "auto":
        for cls in TABLE:
            usable = cls.auto and (plane or not cls.needs_plane)
            # preferred() first: it is cheap, refusal() may probe the model (vmap)
            if usable and cls.preferred(setting) and cls.refusal(setting) is None:
                return cls(setting)
        raise AssertionError("per_point applies to every model")
    cls = _BY_NAME[name]
    if cls.needs_plane and not plane:
        return choose_strategy("auto", setting, plane=False)
    refused = cls.refusal(setting)
    if refused is not None:
        raise ValueError(refused)
    return cls(setting)
