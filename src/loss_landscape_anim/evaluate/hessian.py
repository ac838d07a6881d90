"""``HessianEvaluator``: Hessian-vector products, dense Hessians and extreme eigenvalues of the
mean loss of one architecture at many weight vectors.

Like :class:`~.evaluator.LossEvaluator` it prepares the evaluation data once (the same data forms,
``loss_fn`` and eval-mode semantics), sizes data batches and chunks of points to a memory budget,
and chooses once how products are computed (:mod:`.hessian_products`, :mod:`.hessian_chain`).
Points are scheduled in chunks, chunks outermost (:func:`.schedule.chunk_slices`); within a chunk
the extreme eigenvalues come either from the dense Hessian of each point (P products per point,
then ``eigvalsh``: exact, and the fastest for models with few parameters) or from a Lanczos
iteration batched across the chunk's points (:mod:`.lanczos`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import NumThreads, check_num_threads, progress_bar, resolve_device, thread_scope
from .._validate import check_choice, check_optional_positive_int, check_positive_int
from .data import EvalData
from .evaluator import DEFAULT_CACHE_BUDGET, SMALL_WORK_BYTES
from .functional import FunctionalModel
from .gauss_newton import OPERATORS, FisherProducts, GaussNewtonProducts
from .hessian_chain import ChainProducts
from .hessian_conv import ConvChainProducts, conv_chain
from .hessian_products import FunctionalProducts, HessianProducts
from .lanczos import batched_lanczos
from .points import Points
from .schedule import chunk_slices
from .sizing import activation_bytes
from .strategies import vmap_works
from .strategies.split import split_first_linear

__all__ = [
    "CURVATURE_METHODS",
    "DEFAULT_HESSIAN_BUDGET",
    "DENSE_MAX_PARAMS",
    "PRODUCTS",
    "Extremes",
    "HessianEvaluator",
]

logger = logging.getLogger(__name__)

#: How the extreme eigenvalues at many points are found: ``"dense"`` (the whole Hessian of each
#: point, then ``eigvalsh``), ``"lanczos"`` (batched Lanczos) or ``"auto"``.
CURVATURE_METHODS = ("auto", "dense", "lanczos")
#: How Hessian-vector products are computed: ``"chain"`` (written out, for chains of Linear
#: layers and elementwise activations), ``"conv"`` (written out and shared across points, for
#: sequential convolutional networks: :mod:`.hessian_conv`; ``"auto"`` picks them on the CPU),
#: ``"functional"`` (``torch.func``, any model) or ``"auto"``.
PRODUCTS = ("auto", "chain", "conv", "functional")
#: With ``method="auto"``, models with at most this many parameters get dense Hessians (exact,
#: and about as fast as Lanczos there); above it batched Lanczos wins, by 2x at 100 parameters
#: and 8x at 200 (``benchmarks/bench_curvature.py`` measures the crossover).
DENSE_MAX_PARAMS = 32
#: Default bytes of activations one call of Hessian-vector products may use, by device type.
#: Larger than the loss grid's on the CPU: each Lanczos step is a short call per chunk of
#: points, whose fixed cost is better shared by more points (measured in
#: ``benchmarks/bench_curvature.py``).
DEFAULT_HESSIAN_BUDGET = {"cpu": 128 * 2**20, "cuda": 2**30, "mps": 2**30}
#: Lanczos takes at most this many steps per point by default (fewer when the basis of a point,
#: steps x P float64, would pass :data:`LANCZOS_BASIS_BYTES`; never fewer than
#: ``MIN_LANCZOS_STEPS``, never more than P).
MAX_LANCZOS_STEPS = 300
LANCZOS_BASIS_BYTES = 512 * 2**20
MIN_LANCZOS_STEPS = 30
#: The Lanczos bases of one chunk of points, at their most steps, may take the larger of this and
#: the memory budget. They grow by doubling as steps are taken, and points stop when they
#: converge (LeNet-5: after about 30 steps), so this much is rarely reached; products that share
#: work across points (:mod:`.hessian_conv`) gain from a dozen points per chunk.
LANCZOS_CHUNK_BYTES = 2 * 2**30
#: Activation bytes of a forward pass counted this many times over for a Hessian-vector product
#: (the forward and backward passes and their perturbations, and what is kept between them).
_PRODUCT_OVERHEAD = 8


@dataclass(frozen=True)
class Extremes:
    """Per point: the largest and smallest Hessian eigenvalue (float64), with the number of
    Hessian-vector products spent in all and the method used."""

    largest: np.ndarray
    smallest: np.ndarray
    n_products: int
    method: str


class HessianEvaluator:
    """Hessians of the mean loss of ``model``'s architecture over ``data`` at many weights.

    Args:
        model: supplies the architecture, buffers and ``loss_fn``; evaluated in eval mode on a
            private copy, with the weights of each point passed in.
        data: the evaluation data (a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``).
        device: where to compute; default CPU.
        n_examples: use the first ``n_examples`` examples only.
        chunk_size: points per chunk; default: as many as ``memory_budget`` allows.
        memory_budget: bytes of activations one call may use (default by device type).
        num_threads: CPU threads (restored afterwards), as for :class:`LossEvaluator`.
        products: ``"auto"``, ``"chain"`` or ``"functional"`` (see :data:`PRODUCTS`).
        operator: the curvature whose products are computed: ``"hessian"`` (default), ``"ggn"``
            (the generalised Gauss-Newton matrix) or ``"fisher"`` (the empirical Fisher); see
            :mod:`.gauss_newton`.
    """

    def __init__(
        self,
        model: nn.Module,
        data: Any,
        *,
        device: str | torch.device | None = None,
        n_examples: int | None = None,
        chunk_size: int | None = None,
        memory_budget: int | None = None,
        num_threads: NumThreads = None,
        products: str = "auto",
        operator: str = "hessian",
    ):
        self.device = resolve_device(device)
        self.operator_name = check_choice(operator, "operator", OPERATORS)
        self.chunk_size = check_optional_positive_int(chunk_size, "chunk_size")
        if memory_budget is None:
            memory_budget = DEFAULT_HESSIAN_BUDGET.get(self.device.type, 2**28)
        self.memory_budget = check_positive_int(memory_budget, "memory_budget")
        self.num_threads = check_num_threads(num_threads)
        products = check_choice(products, "products", PRODUCTS)
        self.model = FunctionalModel(model, self.device)
        data = EvalData.prepare(data, self.device, self.model.dtype, n_examples)
        self.model.check(data.X, data.y)
        self.per_example = activation_bytes(self.model.module, data.X[:1]) * _PRODUCT_OVERHEAD
        self.data = data.with_batch_size(self.memory_budget // max(self.per_example, 1))
        self.small = self.device.type == "cpu" and (
            self.per_example * self.data.batch_size < SMALL_WORK_BYTES
        )
        self.products = self._make_products(products)

    @property
    def n_params(self) -> int:
        return self.model.layout.n_params

    @property
    def n_examples(self) -> int:
        return self.data.n_examples

    @property
    def precision(self) -> str:
        """The dtype products are computed in (autocast is turned off for curvature)."""
        return str(self.model.dtype).removeprefix("torch.")

    def threads(self) -> Any:
        """A context that applies ``num_threads`` while the block computes."""
        return thread_scope(self.num_threads, small=self.small)

    def chunk_points(self, n_points: int, n_vectors: int = 1) -> int:
        """Points per call for a job of ``n_points`` points with ``n_vectors`` vectors each."""
        if self.chunk_size is not None:
            return min(self.chunk_size, n_points)
        own = getattr(self.products, "chunk_points", None)  # products that size their chunks
        if own is not None:
            return max(1, min(own // n_vectors, n_points))
        per_point = self.per_example * self.data.batch_size * n_vectors
        return max(1, min(self.memory_budget // max(per_point, 1), n_points))

    def vectors_per_call(self) -> int:
        """Vectors of one point per call when many are wanted (dense Hessians, probes)."""
        return max(1, self.memory_budget // max(self.per_example * self.data.batch_size, 1))

    # -- one point --------------------------------------------------------------------------

    def operator(self, w: torch.Tensor) -> Callable[[np.ndarray], np.ndarray]:
        """``V -> H(w) V`` on float64 arrays (P,) or (P, m), for SciPy's ``LinearOperator``;
        the products are computed at ``w`` (P,)."""
        self.products.start(w.to(self.device, self.model.dtype)[None])
        step = self.vectors_per_call()

        def apply(V: np.ndarray) -> np.ndarray:
            V = np.asarray(V, dtype=np.float64)
            cols = V.reshape(self.n_params, -1).T
            out = np.empty_like(cols)
            for lo in range(0, cols.shape[0], step):
                block = torch.as_tensor(cols[lo : lo + step], device=self.device)
                out[lo : lo + step] = self.products.products(block[None])[0].cpu().numpy()
            return out.T.reshape(V.shape)

        return apply

    def quadratic_forms(self, w: torch.Tensor, probes: torch.Tensor) -> torch.Tensor:
        """``v^T H(w) v`` (S,) float64 for each probe ``v`` of ``probes`` (S, P)."""
        self.products.start(w.to(self.device, self.model.dtype)[None])
        step = self.vectors_per_call()
        values = []
        for lo in range(0, probes.shape[0], step):
            block = probes[lo : lo + step].to(self.device, torch.float64)
            values.append((self.products.products(block[None])[0] * block).sum(dim=1))
        return torch.cat(values)

    # -- many points ------------------------------------------------------------------------

    def dense_hessians(self, W: torch.Tensor) -> torch.Tensor:
        """The Hessians (K, P, P) float64 at the points ``W`` (K, P), symmetrised."""
        P = self.n_params
        self.products.start(W.to(self.device, self.model.dtype))
        identity = torch.eye(P, dtype=torch.float64, device=self.device)
        H = torch.empty(W.shape[0], P, P, dtype=torch.float64, device=self.device)
        step = max(1, self.vectors_per_call() // W.shape[0])
        for lo in range(0, P, step):
            block = identity[lo : lo + step].expand(W.shape[0], -1, -1)
            H[:, lo : lo + step] = self.products.products(block)
        return (H + H.transpose(1, 2)) / 2

    def extremes(
        self,
        points: Points,
        *,
        method: str = "auto",
        tol: float = 1e-3,
        max_steps: int | None = None,
        seed: int | None = None,
        progress: bool = False,
        desc: str = "",
    ) -> Extremes:
        """The largest and smallest Hessian eigenvalue at every point of ``points``.

        ``method``: see :data:`CURVATURE_METHODS`. Lanczos stops at a relative residual ``tol``
        or after ``max_steps`` products per point (default: see :data:`MAX_LANCZOS_STEPS`),
        from one start vector drawn from ``seed`` for every point."""
        method = self.resolve_method(method)
        n = len(points)
        largest, smallest = np.empty(n), np.empty(n)
        steps = self._max_steps(max_steps)
        start = self._start_vector(seed)
        chunk = self.chunk_points(n, self.n_params if method == "dense" else 1)
        if method == "lanczos":
            chunk = min(chunk, self._lanczos_chunk(steps))
        n_products = unconverged = 0
        with (
            self.threads(),
            progress_bar(total=n, enabled=progress, desc=desc, unit="point") as bar,
        ):
            for sl in chunk_slices(n, chunk):
                W = points.weights(sl)
                if method == "dense":
                    values = torch.linalg.eigvalsh(self.dense_hessians(W))
                    hi, lo = values[:, -1], values[:, 0]
                    n_products += W.shape[0] * self.n_params
                else:
                    self.products.start(W)
                    result = batched_lanczos(
                        lambda q: self.products.products(q[:, None])[:, 0],
                        self.products.keep,
                        start.expand(W.shape[0], -1),
                        max_steps=steps,
                        tol=tol,
                    )
                    hi, lo = result.largest, result.smallest
                    n_products += int(result.steps.sum())
                    unconverged += int(result.converged.logical_not().sum())
                largest[sl], smallest[sl] = hi.cpu().numpy(), lo.cpu().numpy()
                bar.update(sl.stop - sl.start)
        if unconverged:
            logger.warning(
                "%d of %d points stopped after %d Lanczos steps before their extreme eigenvalues "
                "reached tol=%g; the values there are less accurate (raise max_iter or tol)",
                unconverged,
                n,
                steps,
                tol,
            )
        return Extremes(largest, smallest, n_products, method)

    def resolve_method(self, method: str) -> str:
        """``method`` checked, with ``"auto"`` resolved for this model."""
        method = check_choice(method, "method", CURVATURE_METHODS)
        if method == "auto":
            return "dense" if self.n_params <= DENSE_MAX_PARAMS else "lanczos"
        return method

    def _max_steps(self, max_steps: int | None) -> int:
        if max_steps is not None:
            return min(check_positive_int(max_steps, "max_iter"), self.n_params)
        by_memory = max(MIN_LANCZOS_STEPS, LANCZOS_BASIS_BYTES // (8 * self.n_params))
        return min(self.n_params, MAX_LANCZOS_STEPS, by_memory)

    def _lanczos_chunk(self, steps: int) -> int:
        """Points whose Lanczos bases (steps x P float64 each) fit in
        :data:`LANCZOS_CHUNK_BYTES` or the memory budget."""
        per_point = 8 * (steps + 1) * self.n_params
        return max(1, max(self.memory_budget, LANCZOS_CHUNK_BYTES) // per_point)

    def _start_vector(self, seed: int | None) -> torch.Tensor:
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        v = torch.randn(self.n_params, generator=generator, dtype=torch.float64)
        return v.to(self.device)

    def _make_products(self, name: str) -> HessianProducts:
        if self.operator_name != "hessian":
            if name == "chain":
                raise ValueError(
                    f"products='chain' computes Hessian products; operator={self.operator_name!r} "
                    "needs products='auto' or 'functional'"
                )
            if self.operator_name == "fisher":
                return FisherProducts(self.model, self.data)
            return GaussNewtonProducts(self.model, self.data, vectorized=self._vectorized())
        # Measured on the CPU only (benchmarks/bench_curvature.py): "auto" takes them there.
        if name == "conv" or (name == "auto" and self.device.type == "cpu"):
            conv = conv_chain(self.model.module, self.data.X[:2])
            if conv is not None:
                cache = DEFAULT_CACHE_BUDGET.get(self.device.type, 2**28)
                return ConvChainProducts(self.model, self.data, conv, cache)
            if name == "conv":
                raise ValueError(
                    "products='conv' needs a sequential network of Conv2d, Linear, elementwise "
                    "activation, MaxPool2d and Flatten layers with at least one Conv2d and no "
                    "buffers; use 'auto' or 'functional'"
                )
        split = split_first_linear(self.model.module, self.data.X[:2])
        chain_ok = split is not None and split.chain is not None and self._head_vmaps()
        if name == "chain" and not chain_ok:
            raise ValueError(
                "products='chain' needs a chain of Linear layers and elementwise activations "
                "(an nn.Sequential, or a model whose as_sequential() returns one); use 'auto' "
                "or 'functional'"
            )
        if name != "functional" and chain_ok:
            assert split is not None
            cache = DEFAULT_CACHE_BUDGET.get(self.device.type, 2**28)
            return ChainProducts(self.model, self.data, split, cache)
        return FunctionalProducts(self.model, self.data, vectorized=self._vectorized())

    def _head_vmaps(self) -> bool:
        """Whether the chain's loss head works: plain cross-entropy, or a loss vmap can run."""
        y = self.data.y
        if self.model.default_cross_entropy and y.ndim == 1 and not y.is_floating_point():
            return True
        return vmap_works(self.model, self.data)

    def _vectorized(self) -> bool:
        has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in self.model.module.modules())
        if has_conv and self.device.type == "cpu":
            return False
        if not vmap_works(self.model, self.data):
            logger.info("torch.vmap cannot run this model or loss; one product at a time")
            return False
        return True
