"""Stage 3: ``compute_loss_grid``, the loss on a grid of points of a plane in weight space.

The caller's model only supplies the architecture: the weights of each point are built from the
plane, and the model is evaluated functionally (``torch.func.functional_call``) on many points at
once under ``torch.vmap``, in chunks sized to a memory budget. The evaluation data are prepared once.

When the model is (or declares, through ``as_sequential()``) an ``nn.Sequential`` whose first layer
with parameters is a ``Linear`` or convolution, that layer is linear in its weights, so on the plane

    f(x; W + a D0 + b D1) = f(x; W) + a f(x; D0) + b f(x; D1)

and it is evaluated 3 times for the whole grid instead of once per point; only the rest of the
network runs per point.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ._io import load_npz, save_npz
from ._layout import ParamLayout
from ._runtime import progress_bar, resolve_device, torch_threads
from ._validate import check_optional_positive_int, check_positive_int, check_positive_number
from .data import materialize
from .projection import Plane
from .training import checked_loss, loss_function
from .trajectory import Trajectory

__all__ = ["DEFAULT_MEMORY_BUDGET", "DEFAULT_RESOLUTION", "LossGrid", "compute_loss_grid"]

logger = logging.getLogger(__name__)

#: Default number of grid points along each axis.
DEFAULT_RESOLUTION = 100
#: The narrower axis of the grid spans at least this share of the wider one.
MIN_ASPECT = 0.1
#: Default bytes of activations one chunk of grid points may use, by device type. On the CPU small
#: chunks win: their tensors stay in cache and are recycled by the allocator instead of being
#: freshly mapped (page faults) every time; a GPU wants large launches.
DEFAULT_MEMORY_BUDGET = {"cpu": 16 * 2**20, "cuda": 2**30, "mps": 2**30}
#: Activations are counted this many times over, for temporaries of the backward-free forward.
_ACTIVATION_OVERHEAD = 2
#: On the CPU, evaluations whose forward pass over one data batch touches fewer activation bytes
#: than this run on one thread: their operations are too short to gain from a thread team, which
#: stalls for a whole scheduler time slice whenever another process holds a core.
SMALL_WORK_BYTES = 8 * 2**20
_LINEAR_FIRST_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True, eq=False)
class LossGrid:
    """Loss values on a regular grid of plane coordinates.

    Attributes:
        xs: (R,) coordinates along direction 0.
        ys: (R,) coordinates along direction 1.
        loss: (R, R) mean loss over the evaluation data; ``loss[i, j]`` is at ``(xs[j], ys[i])``,
            as matplotlib's ``contour`` expects. Non-finite where the model's loss is.
        loss_min: the smallest finite value of ``loss`` (NaN when none is finite).
        argmin: (2,) the ``(x, y)`` of that grid point.
    """

    xs: np.ndarray
    ys: np.ndarray
    loss: np.ndarray
    loss_min: float
    argmin: np.ndarray

    @classmethod
    def from_values(cls, xs: np.ndarray, ys: np.ndarray, loss: np.ndarray) -> LossGrid:
        finite = np.where(np.isfinite(loss), loss, np.nan)
        if np.isnan(finite).all():
            return cls(xs, ys, loss, float("nan"), np.array([np.nan, np.nan]))
        i, j = np.unravel_index(np.nanargmin(finite), loss.shape)
        return cls(xs, ys, loss, float(loss[i, j]), np.array([xs[j], ys[i]]))

    @property
    def resolution(self) -> int:
        return int(self.xs.shape[0])

    def save(self, path: str | os.PathLike) -> Path:
        return save_npz(path, "LossGrid", {"xs": self.xs, "ys": self.ys, "loss": self.loss}, {})

    @classmethod
    def load(cls, path: str | os.PathLike) -> LossGrid:
        arrays, _ = load_npz(path, "LossGrid")
        return cls.from_values(arrays["xs"], arrays["ys"], arrays["loss"])


def grid_axes(
    paths_2d: list[np.ndarray], resolution: int, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (R,) along each axis covering every point of ``paths_2d`` plus ``margin`` times
    the path's extent on each side. An extent below ``MIN_ASPECT`` times the other axis's (or 1,
    when both are zero) is widened to that."""
    points = np.concatenate([p[np.isfinite(p).all(axis=1)] for p in paths_2d] + [np.zeros((1, 2))])
    low, high = points.min(axis=0), points.max(axis=0)
    largest = float((high - low).max()) or 1.0
    # An axis much narrower than the other (a path along one direction) is widened about its
    # centre, so the picture does not magnify rounding noise into a shape.
    narrow = (high - low) < MIN_ASPECT * largest
    centre = (low + high) / 2
    low = np.where(narrow, centre - MIN_ASPECT * largest / 2, low)
    high = np.where(narrow, centre + MIN_ASPECT * largest / 2, high)
    pad = margin * (high - low)
    low, high = low - pad, high + pad
    return np.linspace(low[0], high[0], resolution), np.linspace(low[1], high[1], resolution)


def check_grid_arguments(resolution: Any, margin: Any) -> tuple[int, float]:
    """Validated ``(resolution, margin)``: an integer >= 2 and a finite number >= 0."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"Expected resolution to be an integer >= 2 but got {resolution!r}")
    return resolution, check_positive_number(margin, "margin", allow_zero=True)


def compute_loss_grid(
    model: nn.Module,
    data: Any,
    plane: Plane,
    *,
    resolution: int = DEFAULT_RESOLUTION,
    margin: float = 0.3,
    device: str | torch.device | None = None,
    chunk_size: int | None = None,
    n_examples: int | None = None,
    memory_budget: int | None = None,
    num_threads: int | None = None,
    extra_paths: list[np.ndarray] | None = None,
    progress: bool = True,
) -> LossGrid:
    """Evaluate the mean loss over ``data`` on an R x R grid of ``plane``.

    The grid covers the plane's path (and ``extra_paths``, (T, 2) each) plus ``margin`` times its
    extent on each side. The caller's model is not changed.

    Args:
        model: supplies the architecture (and buffers, such as BatchNorm statistics); the weights
            at each point are ``plane.point(x, y)``. Evaluated in eval mode.
        data: the evaluation data: a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``.
        plane: the plane, from :func:`project`.
        resolution: points along each axis (>= 2).
        margin: extra room on each side, as a share of the path's extent (>= 0).
        device: where to compute; default CPU.
        chunk_size: grid points evaluated at once; default: as many as ``memory_budget`` allows.
        n_examples: evaluate on the first ``n_examples`` examples only (default: all).
        memory_budget: bytes of activations one chunk may use (default by device:
            :data:`DEFAULT_MEMORY_BUDGET`).
        num_threads: CPU threads (restored afterwards); default 1 when one forward pass over a
            data batch touches less than ``SMALL_WORK_BYTES`` of activations, else torch's.
        progress: show a progress bar.
    """
    resolution, margin = check_grid_arguments(resolution, margin)
    evaluator = LossEvaluator(
        model,
        data,
        device=device,
        n_examples=n_examples,
        chunk_size=chunk_size,
        memory_budget=memory_budget,
        num_threads=num_threads,
    )
    xs, ys = grid_axes([plane.path_2d, *(extra_paths or [])], resolution, margin)
    XX, YY = np.meshgrid(xs, ys)
    coords = np.stack([XX.ravel(), YY.ravel()], axis=1)
    losses = evaluator.plane_losses(plane, coords, progress=progress, desc="loss grid")
    return LossGrid.from_values(xs, ys, losses.reshape(resolution, resolution))


def path_losses(
    model: nn.Module,
    data: Any,
    trajectory: Trajectory,
    plane: Plane,
    rows: np.ndarray | None = None,
    **evaluator_options: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """The loss over ``data`` of recorded weights and of their projections onto ``plane``.

    Returns ``(true, projected)``, each (len(rows),): the loss of ``trajectory.params[rows]`` and
    of ``plane.point(*plane.path_2d[rows])``. Where they differ, the plane misrepresents the path.
    """
    rows = np.arange(len(trajectory)) if rows is None else np.asarray(rows)
    evaluator = LossEvaluator(model, data, **evaluator_options)
    true = evaluator.weight_losses(np.asarray(trajectory.params[rows]))
    projected = evaluator.plane_losses(plane, plane.path_2d[rows], progress=False)
    return true, projected


class LossEvaluator:
    """Mean loss of one architecture at many weight vectors, on data prepared once."""

    def __init__(
        self,
        model: nn.Module,
        data: Any,
        *,
        device: str | torch.device | None = None,
        n_examples: int | None = None,
        chunk_size: int | None = None,
        memory_budget: int | None = None,
        num_threads: int | None = None,
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"Expected model to be a torch.nn.Module but got {type(model).__name__}"
            )
        self.device = resolve_device(device)
        self.chunk_size = check_optional_positive_int(chunk_size, "chunk_size")
        if memory_budget is None:
            memory_budget = DEFAULT_MEMORY_BUDGET.get(self.device.type, 2**28)
        self.memory_budget = check_positive_int(memory_budget, "memory_budget")
        self.layout = ParamLayout.of(model)
        self.num_threads = check_optional_positive_int(num_threads, "num_threads")
        self.model = copy.deepcopy(model).to(self.device).eval()
        self.loss_fn = loss_function(self.model)
        self._default_ce = _is_default_cross_entropy(self.loss_fn)
        self._chain_basis: list | None = None
        self._buffers: dict[str, torch.Tensor] = {}
        self.dtype = next(self.model.parameters()).dtype
        X, y = materialize(data, n_examples=n_examples)
        self.X = X.to(self.device, self.dtype if X.is_floating_point() else X.dtype)
        self.y = y.to(self.device)
        self.n_examples = int(self.X.shape[0])
        self._params = dict(self.model.named_parameters())
        with torch.no_grad():
            checked_loss(self.loss_fn, self.model(self.X[:2]), self.y[:2])
        self.split = _split_first_linear(self.model, self.X[:2])
        # Under vmap a convolution with per-point weights becomes a grouped convolution, which is
        # slower on the CPU than one plain convolution per point.
        mapped = self.split.rest if self.split is not None else self.model
        has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in mapped.modules())
        self._vectorized = not (has_conv and self.device.type == "cpu")
        self._per_example = _activation_bytes(self.model, self.X[:1]) * _ACTIVATION_OVERHEAD
        if self.num_threads is None and self.device.type == "cpu":
            # One forward pass over a data batch is the unit of work of a thread team.
            work = self._per_example * min(
                self.n_examples, self.memory_budget // self._per_example + 1
            )
            self.num_threads = 1 if work < SMALL_WORK_BYTES else None

    # -- public evaluation entry points --------------------------------------------------------

    def plane_losses(
        self, plane: Plane, coords: np.ndarray, *, progress: bool = False, desc: str = ""
    ) -> np.ndarray:
        """Mean loss at plane coordinates ``coords`` (K, 2); returns (K,) float64."""
        # Weights are built in float64: far from the origin (a diverged path), float32 would
        # lose the small differences between nearby points to rounding.
        origin64 = torch.as_tensor(plane.origin, dtype=torch.float64, device=self.device)
        D64 = torch.as_tensor(plane.directions, dtype=torch.float64, device=self.device)
        C64 = torch.as_tensor(coords, dtype=torch.float64, device=self.device)

        def weights(chunk: slice) -> torch.Tensor:
            return (origin64 + C64[chunk] @ D64).to(self.dtype)

        basis = (origin64.to(self.dtype), D64.to(self.dtype))
        return self._accumulate(len(coords), weights, C64.to(self.dtype), basis, progress, desc)

    def weight_losses(self, weights: np.ndarray) -> np.ndarray:
        """Mean loss at arbitrary flat weight vectors (K, P); returns (K,) float64."""
        W = torch.as_tensor(np.asarray(weights), dtype=self.dtype, device=self.device)
        return self._accumulate(W.shape[0], lambda chunk: W[chunk], None, None, False, "")

    # -- internals -----------------------------------------------------------------------------

    def _accumulate(
        self,
        n_points: int,
        weights: Callable[[slice], torch.Tensor],
        coords: torch.Tensor | None,
        basis: tuple[torch.Tensor, torch.Tensor] | None,
        progress: bool,
        desc: str,
    ) -> np.ndarray:
        use_split = self.split is not None and basis is not None
        self._chain_basis = self._make_chain_basis(basis) if use_split and basis else None
        batch, chunk = self._sizes(n_points)
        total = torch.zeros(n_points, dtype=torch.float64, device=self.device)
        n_chunks = -(-n_points // chunk)
        n_batches = -(-self.n_examples // batch)
        with (
            torch.no_grad(),
            torch_threads(self.num_threads),
            progress_bar(
                total=n_chunks * n_batches, enabled=progress, desc=desc, unit="chunk"
            ) as bar,
        ):
            for start in range(0, self.n_examples, batch):
                xb, yb = self.X[start : start + batch], self.y[start : start + batch]
                first_maps = self._first_layer_maps(xb, basis) if use_split else None
                for lo in range(0, n_points, chunk):
                    sl = slice(lo, min(lo + chunk, n_points))
                    W = weights(sl)
                    if first_maps is not None and coords is not None:
                        losses = self._split_losses(W, coords[sl], first_maps, yb)
                    else:
                        losses = self._full_losses(W, xb, yb)
                    total[sl] += losses.double() * xb.shape[0]
                    bar.update(1)
        return (total / self.n_examples).cpu().numpy()

    def _sizes(self, n_points: int) -> tuple[int, int]:
        """(examples per data batch, points per chunk) within the memory budget."""
        per_example = self._per_example
        batch = max(1, min(self.n_examples, self.memory_budget // max(per_example, 1)))
        if self.chunk_size is not None:
            return batch, min(self.chunk_size, n_points)
        chunk = max(1, self.memory_budget // max(per_example * batch, 1))
        return batch, min(chunk, n_points)

    def _params_of(self, W: torch.Tensor, names: dict[str, str] | None = None) -> dict:
        views = self.layout.unflatten(W)
        if names is None:
            return views
        return {local: views[full] for local, full in names.items()}

    def _full_losses(self, W: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        def point_loss(params: dict) -> torch.Tensor:
            return self.loss_fn(functional_call(self.model, params, (xb,)), yb)

        return self._map(point_loss, W.shape[0], (self._params_of(W),))

    def _first_layer_maps(
        self, xb: torch.Tensor, basis: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """First-layer outputs at the origin and along each direction: (shape), (2, shape)."""
        assert self.split is not None and basis is not None
        origin, D = basis
        split = self.split
        z = split.prefix(xb)
        maps = [
            functional_call(split.first, self._params_of(v, split.first_names), (z,))
            for v in (origin, D[0], D[1])
        ]
        if self._chain_basis is not None:  # feature-major (features, 3, n) for _chain_losses
            return torch.stack(maps).permute(2, 0, 1).contiguous(), maps[0]
        return maps[0], torch.stack(maps[1:])

    def _split_losses(
        self,
        W: torch.Tensor,
        coords: torch.Tensor,
        first_maps: tuple[torch.Tensor, torch.Tensor],
        yb: torch.Tensor,
    ) -> torch.Tensor:
        assert self.split is not None
        rest = self.split.rest
        z0, zd = first_maps
        if self._chain_basis is not None:
            return self._chain_losses(z0, coords, yb)
        z = torch.addmm(z0.reshape(1, -1), coords, zd.reshape(2, -1))
        z = z.view(coords.shape[0], *z0.shape)

        def point_loss(params: dict, zp: torch.Tensor) -> torch.Tensor:
            return self.loss_fn(functional_call(rest, params, (zp,)), yb)

        return self._map(point_loss, W.shape[0], (self._params_of(W, self.split.rest_names), z))

    def _chain_losses(
        self, maps: torch.Tensor, coords: torch.Tensor, yb: torch.Tensor
    ) -> torch.Tensor:
        """Losses of K points through a chain of Linear layers and activations.

        ``maps`` (features, 3, n) holds the first layer's outputs at the origin and along each
        direction. Activations are kept feature-major, (features, K, n), so every operation runs
        along long contiguous rows, in buffers reused from chunk to chunk. A Linear layer's
        weights on the plane are ``W0 + a E0 + b E1``, so its outputs for all K points come from
        one wide product with ``[W0; E0; E1]``."""
        assert self.split is not None and self.split.chain is not None
        k, n = coords.shape[0], maps.shape[2]
        coef = torch.cat([torch.ones_like(coords[:, :1]), coords], dim=1)  # (K, 3): 1, a, b
        a = torch.bmm(
            coef.expand(maps.shape[0], k, 3), maps, out=self._buffer("a0", (maps.shape[0], k, n))
        )
        for step, ((module, _), basis) in enumerate(
            zip(self.split.chain, self._chain_basis or [], strict=True)
        ):
            if basis is None:
                a = a.relu_() if type(module) is nn.ReLU else module(a)
                continue
            stacked, bias0, bias_dirs = basis
            out = stacked.shape[0] // 3
            m = torch.mm(
                stacked, a.view(a.shape[0], -1), out=self._buffer(f"m{step}", (3 * out, k * n))
            )
            m = m.view(3, out, k, n)
            a = torch.addcmul(
                m[0], coords[:, 0, None], m[1], out=self._buffer(f"a{step}", (out, k, n))
            )
            a.addcmul_(coords[:, 1, None], m[2])
            if bias0 is not None:
                a += (bias0[:, None] + bias_dirs.T @ coords.T)[:, :, None]
        if self._default_ce and yb.ndim == 1 and not yb.is_floating_point():
            top = a.amax(dim=0)
            lse = top + (a - top).exp_().sum(dim=0).log_()
            picked = a.gather(0, yb.expand(1, k, n)).squeeze(0)
            return (lse - picked).mean(dim=1)
        logits = a.permute(1, 2, 0)  # (K, n, classes)
        return self._map(lambda out: self.loss_fn(out, yb), k, (logits,))

    def _buffer(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A scratch tensor reused across chunks (fresh memory costs page faults on the CPU)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = torch.empty(shape, dtype=self.dtype, device=self.device)
            self._buffers[name] = buf
        return buf

    def _make_chain_basis(self, basis: tuple[torch.Tensor, torch.Tensor]) -> list | None:
        """Per chain step: None for an activation, or ``([W0; E0; E1], b0, [e0; e1])`` for a
        Linear layer, from the plane's origin and directions."""
        if self.split is None or self.split.chain is None:
            return None
        origin, D = (self.layout.unflatten(v) for v in basis)
        steps: list = []
        for _, names in self.split.chain:
            if names is None:
                steps.append(None)
                continue
            w = names["weight"]
            stacked = torch.cat([origin[w], D[w][0], D[w][1]])
            b = names.get("bias")
            steps.append((stacked, origin[b], D[b]) if b else (stacked, None, None))
        return steps

    def _map(self, fn: Callable[..., torch.Tensor], n: int, args: tuple) -> torch.Tensor:
        """``fn`` over the leading dimension (of size ``n``) of ``args``: vectorised, or one point
        at a time when the model or loss cannot run under ``torch.vmap`` or vmap would be slower."""
        if self._vectorized and n > 1:
            try:
                return torch.vmap(fn)(*args)
            except (RuntimeError, ValueError, NotImplementedError) as exc:
                logger.info("torch.vmap failed (%s); evaluating one point at a time", exc)
                self._vectorized = False
        return torch.stack([fn(*(_index(a, k) for a in args)) for k in range(n)])


def _is_default_cross_entropy(loss_fn: Callable) -> bool:
    """True for ``F.cross_entropy`` and a ``GenericModel`` that keeps its default ``loss_fn``."""
    from .models import GenericModel

    return loss_fn is F.cross_entropy or getattr(loss_fn, "__func__", None) is GenericModel.loss_fn


def _index(arg: Any, k: int) -> Any:
    return {name: v[k] for name, v in arg.items()} if isinstance(arg, dict) else arg[k]


@dataclass(frozen=True)
class _Split:
    """A sequential model cut after its first layer with parameters."""

    prefix: nn.Module  # parameter-free leading modules (Flatten, ...)
    first: nn.Module  # the layer linear in its weights
    first_names: dict[str, str]  # local parameter name -> model parameter name
    rest: nn.Module
    rest_names: dict[str, str]
    # The rest as a chain of Linear layers (their model parameter names) and elementwise
    # activations (None), when it is only made of those; else None.
    chain: list[tuple[nn.Module, dict[str, str] | None]] | None = None


#: Parameter-free modules that act on each element alone (in eval mode).
_ELEMENTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.ReLU6,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softplus,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Identity,
    nn.Dropout,
)


def _linear_chain(
    modules: list[nn.Module], full_names: dict[int, str]
) -> list[tuple[nn.Module, dict[str, str] | None]] | None:
    """``modules`` as a chain of Linear layers and elementwise activations, or None."""
    chain: list[tuple[nn.Module, dict[str, str] | None]] = []
    for m in modules:
        if isinstance(m, nn.Linear):
            chain.append((m, {n: full_names[id(p)] for n, p in m.named_parameters()}))
        elif isinstance(m, _ELEMENTWISE):
            chain.append((m, None))
        else:
            return None
    return chain


def _split_first_linear(model: nn.Module, sample: torch.Tensor) -> _Split | None:
    """Cut ``model`` after its first layer that is linear in its weights, if the model is (or
    declares an equivalent) ``nn.Sequential``; None otherwise."""
    seq: Any = model if isinstance(model, nn.Sequential) else None
    as_sequential = getattr(model, "as_sequential", None)
    if seq is None and callable(as_sequential):
        seq = as_sequential()
    if not isinstance(seq, nn.Sequential):
        return None
    modules = list(seq)
    k = next((i for i, m in enumerate(modules) if any(True for _ in m.parameters())), None)
    if k is None or not isinstance(modules[k], _LINEAR_FIRST_LAYERS):
        return None
    if any(any(True for _ in m.buffers()) for m in modules[: k + 1]):
        return None
    full_names = {id(p): n for n, p in model.named_parameters()}
    first, rest = modules[k], nn.Sequential(*modules[k + 1 :])
    first_names = {n: full_names.get(id(p), "") for n, p in first.named_parameters()}
    rest_names = {n: full_names.get(id(p), "") for n, p in rest.named_parameters()}
    if "" in first_names.values() or "" in rest_names.values():
        return None
    if len(first_names) + len(rest_names) != len(full_names):
        return None
    with torch.no_grad():
        if not torch.allclose(seq(sample), model(sample), rtol=1e-4, atol=1e-5):
            logger.info("as_sequential() does not match forward(); using the general evaluator")
            return None
    chain = _linear_chain(modules[k + 1 :], full_names) if isinstance(first, nn.Linear) else None
    return _Split(nn.Sequential(*modules[:k]), first, first_names, rest, rest_names, chain)


def _activation_bytes(model: nn.Module, sample: torch.Tensor) -> int:
    """Bytes of all intermediate outputs of ``model`` for one example."""
    sizes: list[int] = []

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        for t in _tensors(output):
            sizes.append(t.numel() * t.element_size())

    leaves = [m for m in model.modules() if not any(True for _ in m.children())] or [model]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            out = model(sample)
    finally:
        for h in handles:
            h.remove()
    return sum(sizes) + sum(t.numel() * t.element_size() for t in _tensors(out))


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)
