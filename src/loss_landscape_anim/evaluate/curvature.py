"""``CurvatureEvaluator``: Hessian-vector products, dense Hessians and extreme eigenvalues of the
mean loss of one architecture at many weight vectors.

It is built on the same :class:`~.preparation.Preparation` as the loss evaluator (one model copy
and one data preparation per run: the same data forms, ``loss_fn`` and eval-mode semantics,
streamed data, ranks), sizes data batches and chunks of points to its own memory budget, and
chooses once how products are computed (:data:`PRODUCTS`). Many points run on the one scheduler
(:mod:`.schedule`: chunks outermost, ranks, resumable checkpoints, progress); within a chunk the
extreme eigenvalues come either from the dense Hessian of each point (P products per point, then
``eigvalsh``: exact, and the fastest for models with few parameters) or from a Lanczos iteration
batched across the chunk's points (:mod:`.lanczos`). One point's eigenpairs come from SciPy's
``eigsh`` (:mod:`.eigenpairs`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import NumThreads
from .._validate import check_choice
from .budgets import DEFAULT_CACHE_BUDGET, DEFAULT_HESSIAN_BUDGET, PRODUCT_OVERHEAD, budget_for
from .checkpoint import GridCheckpoint
from .extremes import Extremes, ExtremesSettings, extremes_job
from .gauss_newton import OPERATORS, FisherProducts, GaussNewtonProducts
from .hessian_chain import ChainProducts
from .hessian_conv import ConvChainProducts, conv_chain
from .hessian_products import FunctionalProducts, HessianProducts
from .preparation import Evaluator, Preparation
from .schedule import collect
from .streamed import StreamedData

__all__ = ["PRODUCTS", "CurvatureEvaluator"]

logger = logging.getLogger(__name__)

#: How Hessian-vector products are computed: ``"chain"`` (written out, for chains of Linear
#: layers and elementwise activations), ``"conv"`` (written out and shared across points, for
#: sequential convolutional networks: :mod:`.hessian_conv`; ``"auto"`` takes them on the CPU,
#: where they were measured), ``"functional"`` (``torch.func``, any model) or ``"auto"``.
PRODUCTS = ("auto", "chain", "conv", "functional")


class CurvatureEvaluator(Evaluator):
    """Hessians of the mean loss of ``model``'s architecture over ``data`` at many weights.

    Args:
        model: supplies the architecture, buffers and ``loss_fn``; evaluated in eval mode on a
            private copy, with the weights of each point passed in. Or a
            :class:`~.preparation.Preparation` (or a :class:`~.evaluator.LossEvaluator`, whose
            preparation is shared), with no ``data`` and none of the preparation's options.
        data: the evaluation data (a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``).
        device, n_examples, num_threads, distributed, stream, subset_seed: the preparation's
            options, as for :class:`~.evaluator.LossEvaluator`.
        chunk_size: points per chunk; default: as many as ``memory_budget`` allows.
        memory_budget: bytes of activations one call of products may use (default by device
            type: :data:`~.budgets.DEFAULT_HESSIAN_BUDGET`).
        products: ``"auto"``, ``"chain"``, ``"conv"`` or ``"functional"`` (see
            :data:`PRODUCTS`).
        operator: the curvature whose products are computed: ``"hessian"`` (default), ``"ggn"``
            (the generalised Gauss-Newton matrix ``J^T H_z J``) or ``"fisher"`` (the empirical
            Fisher); see :mod:`.gauss_newton`.
        precision: None (the model's dtype: the default, since reduced precision drowns small
            eigenvalues in rounding noise), or ``"bf16"`` / ``"fp16"`` (GPUs) to run the
            products of a float32 model under autocast.
    """

    def __init__(
        self,
        model: nn.Module | Preparation | Any,
        data: Any = None,
        *,
        device: str | torch.device | None = None,
        n_examples: int | None = None,
        chunk_size: int | None = None,
        memory_budget: int | None = None,
        num_threads: NumThreads = None,
        products: str = "auto",
        distributed: bool | None = None,
        stream: bool | None = None,
        subset_seed: int = 0,
        precision: str | None = None,
        operator: str = "hessian",
    ):
        products = check_choice(products, "products", PRODUCTS)
        self.operator_name = check_choice(operator, "operator", OPERATORS)
        options = {
            "device": device,
            "n_examples": n_examples,
            "num_threads": num_threads,
            "distributed": distributed,
            "stream": stream,
            "subset_seed": subset_seed,
        }
        super().__init__(
            model,
            data,
            options,
            chunk_size=chunk_size,
            memory_budget=memory_budget,
            precision=precision,
        )
        prep = self.preparation
        if memory_budget is None:
            memory_budget = budget_for(DEFAULT_HESSIAN_BUDGET, self.device)
        self.memory_budget = int(memory_budget)
        self.per_example = prep.example_bytes * PRODUCT_OVERHEAD
        self.data = prep.data.with_batch_size(self.memory_budget // max(self.per_example, 1))
        self.products = self._make_products(products)
        self.products.autocast_dtype = self.autocast_dtype

    @property
    def n_params(self) -> int:
        return self.model.layout.n_params

    @property
    def precision(self) -> str:
        """The dtype products are computed in."""
        return str(self.autocast_dtype or self.model.dtype).removeprefix("torch.")

    def scope(self) -> contextlib.AbstractContextManager[None]:
        """Threads while the block computes products (the products apply the precision)."""
        return self.preparation.threads(self.per_example * self.data.batch_size)

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

    def weights(self, w: Any) -> torch.Tensor:
        """Flat weights (P,) (array or tensor) on the device, in the model's dtype."""
        return torch.as_tensor(np.asarray(torch.as_tensor(w).detach().cpu())).to(
            self.device, self.model.dtype
        )

    def operator(self, w: Any) -> Callable[[np.ndarray], np.ndarray]:
        """``V -> H(w) V`` on float64 arrays (P,) or (P, m), for SciPy's ``LinearOperator``;
        the products are computed at ``w`` (P,)."""
        self.products.start(self.weights(w)[None])
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

    def quadratic_forms(self, w: Any, probes: torch.Tensor) -> torch.Tensor:
        """``v^T H(w) v`` (S,) float64 for each probe ``v`` of ``probes`` (S, P)."""
        self.products.start(self.weights(w)[None])
        step = self.vectors_per_call()
        values = []
        for lo in range(0, probes.shape[0], step):
            block = probes[lo : lo + step].to(self.device, torch.float64)
            values.append((self.products.products(block[None])[0] * block).sum(dim=1))
        return torch.cat(values)

    # -- many points ------------------------------------------------------------------------

    def dense_hessians(self, W: torch.Tensor) -> torch.Tensor:
        """The Hessians (K, P, P) float64 at the points ``W`` (K, P), symmetrised: P products
        per point, for models small enough that K P x P matrices fit (see
        :data:`~.extremes.DENSE_MAX_PARAMS`)."""
        P = self.n_params
        self.products.start(W.to(self.device, self.model.dtype))
        identity = torch.eye(P, dtype=torch.float64, device=self.device)
        H = torch.empty(W.shape[0], P, P, dtype=torch.float64, device=self.device)
        step = max(1, self.vectors_per_call() // W.shape[0])
        for lo in range(0, P, step):
            block = identity[lo : lo + step].expand(W.shape[0], -1, -1)
            H[:, lo : lo + step] = self.products.products(block)
        return (H + H.transpose(1, 2)) / 2

    def plane_extremes(
        self,
        origin: np.ndarray,
        directions: np.ndarray,
        coords: np.ndarray,
        *,
        progress: bool = False,
        desc: str = "",
        checkpoint: str | os.PathLike | None = None,
        job: dict[str, Any] | None = None,
        **settings: Any,
    ) -> Extremes:
        """The largest and smallest Hessian eigenvalue at the plane points
        ``origin + coords @ directions``; ``settings``: those of :class:`ExtremesSettings`
        (``method``, ``tol``, ``max_steps``, ``seed``). With ``checkpoint`` (a file path),
        finished chunks are saved there and a rerun computes only the missing ones."""
        points = self.preparation.plane_points(origin, directions, coords)
        return self._extremes(points, points.fingerprint, progress, desc, checkpoint, job, settings)

    def weight_extremes(
        self, weights: np.ndarray, *, progress: bool = False, desc: str = "", **settings: Any
    ) -> Extremes:
        """The largest and smallest Hessian eigenvalue at flat weight vectors (K, P)."""
        points = self.preparation.weight_points(weights)
        return self._extremes(points, None, progress, desc, None, None, settings)

    def _extremes(
        self,
        points: Any,
        fingerprint: Callable[[], str] | None,
        progress: bool,
        desc: str,
        checkpoint: str | os.PathLike | None,
        job: dict[str, Any] | None,
        settings: dict[str, Any],
    ) -> Extremes:
        resolved = ExtremesSettings.of(self, **settings)
        n = len(points)
        if n == 0:
            return Extremes.empty(resolved.method)
        size = points.weights(slice(0, 1)).shape[-1]
        store = None
        if checkpoint is not None:
            identity = {
                "points": fingerprint() if fingerprint is not None else None,
                **self.identity(),
                "probe": self.preparation.probe(points),
                **resolved.identity(),
                **(job or {}),
            }
            writer = self.ranks is None or self.ranks.rank == 0
            store = GridCheckpoint(checkpoint, identity, n, width=4, writer=writer)
        with torch.no_grad(), self.scope():
            values = collect(
                extremes_job(self, points, resolved),
                n,
                resolved.chunk(self, n),
                width=4,
                start=lambda: self.preparation.check_size(size, "the points"),
                progress=progress,
                desc=desc,
                checkpoint=store,
                ranks=self.ranks,
                job_arguments={**(job or {}), **resolved.identity()},
            )
        return Extremes.of(values, resolved)

    def identity(self) -> dict[str, Any]:
        """What the values depend on besides the points and the solver's settings, as JSON
        values (see :meth:`~.preparation.Preparation.identity`)."""
        return {
            **self.preparation.identity(),
            "precision": self.precision,
            "operator": self.operator_name,
        }

    def _make_products(self, name: str) -> HessianProducts:
        if self.operator_name != "hessian":
            return self._gauss_newton_products(name)
        conv = self._conv_products(name)
        if conv is not None:
            return conv
        prep = self.preparation
        split = prep.split
        chain_ok = (
            split is not None
            and split.chain is not None
            and not isinstance(self.data, StreamedData)  # it keeps every batch's inputs
            and self.autocast_dtype is None  # its products are written out in the model's dtype
            and self._head_vmaps()
        )
        if name == "chain" and not chain_ok:
            raise ValueError(
                "products='chain' needs a chain of Linear layers and elementwise activations "
                "(an nn.Sequential, or a model whose as_sequential() returns one) on data held "
                "in memory, in the model's own precision; use 'auto' or 'functional'"
            )
        if name != "functional" and chain_ok:
            assert split is not None
            cache = budget_for(DEFAULT_CACHE_BUDGET, self.device)
            return ChainProducts(self.model, self.data, split, cache)
        conv_on_cpu = self._conv_on_cpu()  # vmap would make grouped convolutions
        vectorized = not conv_on_cpu and prep.vmap_works
        if not conv_on_cpu and not vectorized:
            logger.info("torch.vmap cannot run this model or loss; one product at a time")
        return FunctionalProducts(self.model, self.data, vectorized=vectorized)

    def _gauss_newton_products(self, name: str) -> HessianProducts:
        if name in ("chain", "conv"):
            raise ValueError(
                f"products={name!r} computes Hessian products; operator={self.operator_name!r} "
                "needs products='auto' or 'functional'"
            )
        if self.operator_name == "fisher":
            return FisherProducts(self.model, self.data)
        vectorized = self.preparation.vmap_works and not self._conv_on_cpu()
        return GaussNewtonProducts(self.model, self.data, vectorized=vectorized)

    def _conv_products(self, name: str) -> HessianProducts | None:
        """The written-out products of a sequential convolutional network: asked for, or by
        ``"auto"`` on the CPU (measured there only); None when they do not apply."""
        if name not in ("conv", "auto") or (name == "auto" and self.device.type != "cpu"):
            return None
        conv = (
            None if self.autocast_dtype is not None else conv_chain(self.model.module, self.data.X)
        )
        if conv is not None:
            cache = budget_for(DEFAULT_CACHE_BUDGET, self.device)
            return ConvChainProducts(self.model, self.data, conv, cache)
        if name == "conv":
            raise ValueError(
                "products='conv' needs a sequential network of Conv2d, Linear, elementwise "
                "activation, MaxPool2d and Flatten layers with at least one Conv2d and no "
                "buffers, in the model's own precision; use 'auto' or 'functional'"
            )
        return None

    def _conv_on_cpu(self) -> bool:
        return self.preparation.has_conv() and self.device.type == "cpu"

    def _head_vmaps(self) -> bool:
        """Whether the chain's loss head works: plain cross-entropy, or a loss vmap can run."""
        y = self.data.y
        if self.model.default_cross_entropy and y.ndim == 1 and not y.is_floating_point():
            return True
        return self.preparation.vmap_works
