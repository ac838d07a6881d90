"""The first layer's outputs at a plane's origin and along its two directions, per data batch:
what :mod:`.first_layer` and :mod:`.linear_chain` build every point's first-layer output from."""

from __future__ import annotations

import torch
from torch.func import functional_call

from ..data import EvalData
from ..functional import FunctionalModel
from ..points import PlanePoints, Points
from ..probes import SequentialSplit
from .base import Setting, Strategy

__all__ = ["FirstLayerMaps", "HoistedFirstLayer"]


class FirstLayerMaps:
    """``maps(b)`` -> (3, N_b, ...) first-layer outputs of batch ``b`` at the origin and along
    each direction; with ``feature_major``, (features, 3, N_b) for a ``Linear`` first layer; with
    a pooling ``window`` (rows, columns), (3, rows * columns, N_b, C, H', W'): the outputs cut
    into the window's positions, so that a max pooling is a maximum over the second dimension of
    contiguous planes (the rows and columns that fill no window are dropped). All batches are kept
    when they fit in ``cache_bytes``; otherwise only the last batch asked for is kept."""

    def __init__(
        self,
        model: FunctionalModel,
        split: SequentialSplit,
        data: EvalData,
        points: PlanePoints,
        cache_bytes: int,
        *,
        feature_major: bool = False,
        window: tuple[int, int] | None = None,
    ):
        self.model, self.split, self.data = model, split, data
        self.feature_major, self.window = feature_major, window
        views = model.layout.unflatten(torch.stack([points.origin, *points.directions]))
        self.basis = {local: views[full] for local, full in split.first_names.items()}
        xb, _ = data.tensor_batch(0)
        first = self._compute(xb[:1])
        per_example = first.numel() * first.element_size()
        self.keep_all = per_example * data.n_examples <= cache_bytes
        self._cache: dict[int, torch.Tensor] = {}

    def maps(self, b: int) -> torch.Tensor:
        found = self._cache.get(b)
        if found is None:
            if not self.keep_all:
                self._cache.clear()
            found = self._cache[b] = self._compute(self.data.tensor_batch(b)[0])
        return found

    def _compute(self, xb: torch.Tensor) -> torch.Tensor:
        z = self.split.prefix(xb)
        params = self.basis

        def first(p: dict[str, torch.Tensor]) -> torch.Tensor:
            return functional_call(self.split.first, p, (z,))

        maps = torch.stack([first({k: v[i] for k, v in params.items()}) for i in range(3)])
        if self.feature_major:
            return maps.permute(2, 0, 1).contiguous()
        if self.window is not None:
            return _window_major(maps, self.window)
        return maps


def _window_major(maps: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """(3, N, C, H, W) -> (3, kh * kw, N, C, H // kh, W // kw) for a ``window`` (kh, kw)."""
    kh, kw = window
    t, n, c, h, w = maps.shape
    rows, cols = h // kh, w // kw
    cut = maps[..., : rows * kh, : cols * kw].reshape(t, n, c, rows, kh, cols, kw)
    return cut.permute(0, 4, 6, 1, 2, 3, 5).reshape(t, kh * kw, n, c, rows, cols)


class HoistedFirstLayer(Strategy):
    """Base of the strategies that build each point's first-layer output from
    :class:`FirstLayerMaps` (points of a plane through a model cut by ``split``)."""

    needs_plane = True
    #: Whether the maps are kept feature-major (see :class:`FirstLayerMaps`).
    feature_major: bool = False
    #: The max-pooling window the maps are cut for, if any (see :class:`FirstLayerMaps`).
    window: tuple[int, int] | None = None

    def __init__(self, setting: Setting):
        super().__init__(setting)
        assert setting.split is not None, "refusal() keeps models that do not split away"
        self.split: SequentialSplit = setting.split
        self.cache_bytes = setting.cache_bytes
        self.first_maps: FirstLayerMaps | None = None
        self.prepare()

    @classmethod
    def refusal(cls, setting: Setting) -> str | None:
        if setting.split is None:
            return (
                f"strategy={cls.name!r} needs an nn.Sequential model (or one whose "
                "as_sequential() returns one) whose first layer with parameters is Linear or a "
                "convolution; use 'auto', 'vmap' or 'per_point'"
            )
        return None

    def prepare(self) -> None:
        """Check that the model suits the strategy and set up its state (subclasses)."""

    def start(self, points: Points) -> None:
        if not isinstance(points, PlanePoints):
            raise TypeError(f"The {self.name!r} strategy evaluates points of a plane only")
        super().start(points)
        self.first_maps = FirstLayerMaps(
            self.model,
            self.split,
            self.data,
            points,
            self.cache_bytes,
            feature_major=self.feature_major,
            window=self.window,
        )
