"""``align``: permute the hidden units of one solution to match another's (Ainsworth et al. 2023,
"Git Re-Basin: merging models modulo permutation symmetries").

Two networks trained from different seeds can compute nearly the same function with their hidden
units in another order; much of the loss barrier on the straight line between them comes from that
mismatch (Entezari et al. 2022). Permuting one network's units changes its weights, not its
function, so the line to the aligned weights is a fairer test of whether the two share a basin.

- **Weight matching** (no data): the permutations maximise the sum over layers of
  ``<W_ref, P_l W_other P_{l-1}^T>``, found by coordinate descent, each step an exact linear
  assignment (SciPy's ``linear_sum_assignment``). The descent starts from a sweep from the input
  to the output in which each layer is matched on its incoming weights only, so a permuted copy
  of the reference is recovered exactly.
- **Activation matching** (with ``data``): each layer's permutation maximises the correlation
  ``sum_x a_ref(x) . a_other(x)`` of the units' activations over the data (after the activation,
  pooling and BatchNorm, i.e. the input of the next layer), one linear assignment per layer. Units
  silent on every example (dead ReLUs) are paired by their weights instead.
- **The best of them** (with ``data``): the candidate whose midpoint with the reference has the
  lowest loss, the unpermuted solution included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import resolve_device
from .._validate import check_choice, check_positive_int
from ..evaluate import LossEvaluator
from ..evaluate.data import EvalData
from ..evaluate.functional import FunctionalModel
from ..evaluate.probes import has_batch_norm
from .curves import batch_norm_in_training_mode
from .loss_line import _flat as flat_weights
from .permutations import PermutationSpec, permutation_spec, units_matrix

__all__ = ["ACTIVATION_BATCH", "ALIGN_METHODS", "activation_matching", "align", "weight_matching"]

#: The ways :func:`align` finds the permutation.
ALIGN_METHODS = ("weight", "activation", "best")

#: Examples per forward pass of activation matching (BatchNorm layers use each batch's statistics).
ACTIVATION_BATCH = 1024


def align(
    model: nn.Module,
    reference: Any,
    other: Any,
    *,
    data: Any = None,
    method: str | None = None,
    n_examples: int | None = None,
    device: str | torch.device | None = None,
    max_iter: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """The weights of ``other`` with its hidden units permuted to match ``reference``.

    The result computes the same function as ``other`` (up to float rounding: only the order of
    the units changes) and is as close to ``reference`` as a permutation of units makes it.

    Args:
        model: supplies the architecture: a chain of ``Linear`` / ``Conv2d`` layers with
            BatchNorm, elementwise activations, dropout, pooling and flattening between them
            (anything else raises a ``ValueError`` naming the first layer that cannot be
            permuted). Its own weights are not used.
        reference, other: flat weight vectors (arrays, tensors, rows of a :class:`Trajectory`)
            or models of the same architecture.
        data: data (a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``) for the methods
            that need it.
        method: ``"weight"`` (weight matching; the default without ``data``), ``"activation"``
            (activation matching on ``data``; the default with it) or ``"best"`` (with
            ``data``): of ``other`` as it is, weight matching's and activation matching's
            permutations, the one whose midpoint ``(reference + aligned) / 2`` has the lowest
            loss on ``data``. Both matchings optimise a proxy, not the barrier: for two runs from
            the same initial weights, whose units already correspond, either can raise the
            barrier on the line, which ``"best"`` never chose to do on the built-in examples.
            Ainsworth et al. (sec. 3.3) optimise the midpoint's loss too.
        n_examples: with ``data``, use the first ``n_examples`` examples only.
        device: where the methods with data run; default CPU.
        max_iter: passes of weight matching's coordinate descent, at most.
        seed: the order in which weight matching visits the layers.

    Returns:
        (P,) float64: ``other``'s weights, permuted.

    BatchNorm: the running statistics are buffers, not part of the weight vector, and are not
    permuted; evaluate aligned weights with ``bn="recompute"`` (which re-estimates them at each
    point). Activation matching uses each batch's statistics, and ``"best"`` evaluates the
    midpoints with recomputed statistics.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected model to be a torch.nn.Module but got {type(model).__name__}")
    method = check_choice(
        method if method is not None else ("weight" if data is None else "activation"),
        "method",
        ALIGN_METHODS,
    )
    if method != "weight" and data is None:
        raise ValueError(f"Expected data for method={method!r} (it matches on examples)")
    max_iter = check_positive_int(max_iter, "max_iter")
    spec = permutation_spec(model)
    a = flat_weights(reference, spec.layout, "reference")
    b = flat_weights(other, spec.layout, "other")
    torch_device = resolve_device(device)
    candidates = []
    if method in ("weight", "best"):
        candidates.append(spec.apply(b, weight_matching(spec, a, b, max_iter=max_iter, seed=seed)))
    if method in ("activation", "best"):
        perms = activation_matching(spec, model, a, b, data, n_examples, torch_device)
        candidates.append(spec.apply(b, perms))
    if method != "best":
        return candidates[0]
    candidates.insert(0, b)
    midpoints = np.stack([(a + c) / 2 for c in candidates])
    bn = "recompute" if has_batch_norm(model) else "eval"
    evaluator = LossEvaluator(model, data, n_examples=n_examples, device=torch_device, bn=bn)
    losses = evaluator.weight_losses(midpoints)
    return candidates[int(np.nanargmin(losses))] if np.isfinite(losses).any() else b


def weight_matching(
    spec: PermutationSpec, a: np.ndarray, b: np.ndarray, *, max_iter: int = 100, seed: int = 0
) -> list[np.ndarray]:
    """Per group, the permutation of ``b``'s units that best matches ``a``'s weights."""
    perms = [np.arange(n) for n in spec.sizes]
    named_a = spec.named(a)
    for g in range(len(spec.sizes)):  # from the input on, each layer on its incoming weights
        later = {axis.name for axis in spec.axes if axis.group > g}
        perms[g] = _best_permutation(spec, g, named_a, b, perms, exclude=later)
    rng = np.random.default_rng(seed)
    for _ in range(max_iter):
        changed = False
        for g in rng.permutation(len(spec.sizes)):
            best = _best_permutation(spec, int(g), named_a, b, perms)
            if not np.array_equal(best, perms[g]):
                perms[g], changed = best, True
        if not changed:
            break
    return perms


def _best_permutation(
    spec: PermutationSpec,
    g: int,
    named_a: dict[str, np.ndarray],
    b: np.ndarray,
    perms: list[np.ndarray],
    exclude: set[str] = frozenset(),  # type: ignore[assignment]
) -> np.ndarray:
    """The permutation of group ``g`` maximising ``<a, b permuted>`` over the parameters it
    moves (every other group permuted by ``perms``; parameters in ``exclude`` left out)."""
    return _assignment(_weight_cost(spec, g, named_a, b, perms, exclude))


def _weight_cost(
    spec: PermutationSpec,
    g: int,
    named_a: dict[str, np.ndarray],
    b: np.ndarray,
    perms: list[np.ndarray],
    exclude: set[str] = frozenset(),  # type: ignore[assignment]
) -> np.ndarray:
    """(n, n): the inner products of unit i of ``a`` with unit j of ``b`` over the parameters
    group ``g`` moves."""
    named_b = spec.permute(b, perms, skip=g)
    n = spec.sizes[g]
    cost = np.zeros((n, n))
    for axis in spec.axes_of(g):
        if axis.name not in exclude:
            cost += (
                units_matrix(named_a[axis.name], axis, n)
                @ units_matrix(named_b[axis.name], axis, n).T
            )
    return cost


def _assignment(cost: np.ndarray) -> np.ndarray:
    """The permutation ``perm`` maximising ``sum_i cost[i, perm[i]]``."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cost, maximize=True)
    return cols[np.argsort(rows)]


def activation_matching(
    spec: PermutationSpec,
    model: nn.Module,
    a: np.ndarray,
    b: np.ndarray,
    data: Any,
    n_examples: int | None,
    device: torch.device,
) -> list[np.ndarray]:
    """Per group, the permutation of ``b``'s units whose activations over ``data`` best match
    ``a``'s."""
    costs, silent = _activation_products(spec, model, a, b, data, n_examples, device)
    perms = [_assignment(cost) for cost in costs]
    named_a = spec.named(a)
    for g in range(len(spec.sizes)):
        _match_silent_units(spec, g, silent[g], named_a, b, perms)
    return perms


def _activation_products(
    spec: PermutationSpec,
    model: nn.Module,
    a: np.ndarray,
    b: np.ndarray,
    data: Any,
    n_examples: int | None,
    device: torch.device,
) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]:
    """Per group: the (n, n) sums over the data of products of the activations of ``a``'s
    units with ``b``'s, and which units of each are silent (zero on every example)."""
    functional = FunctionalModel(model, device)
    batch_norm_in_training_mode(functional.module)
    examples = EvalData.prepare(data, device, functional.dtype, n_examples)
    examples = examples.with_batch_size(ACTIVATION_BATCH)
    costs = [np.zeros((n, n)) for n in spec.sizes]
    energy = [(np.zeros(n), np.zeros(n)) for n in spec.sizes]
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        functional.module.get_submodule(name).register_forward_pre_hook(_capture(captured, g, n))
        for g, (name, n) in enumerate(zip(spec.consumers, spec.sizes, strict=True))
    ]
    weights = [
        functional.params(torch.as_tensor(w, dtype=functional.dtype, device=device)) for w in (a, b)
    ]
    try:
        with torch.no_grad():
            for k in range(examples.n_batches):
                x, _ = examples.batch(k)
                functional.outputs(weights[0], x)
                acts_a = dict(captured)
                functional.outputs(weights[1], x)
                for g, cost in enumerate(costs):
                    cost += (acts_a[g].T @ captured[g]).cpu().numpy()
                    energy[g][0][:] += (acts_a[g] ** 2).sum(dim=0).cpu().numpy()
                    energy[g][1][:] += (captured[g] ** 2).sum(dim=0).cpu().numpy()
    finally:
        for hook in hooks:
            hook.remove()
    return costs, [(ea == 0, eb == 0) for ea, eb in energy]


def _match_silent_units(
    spec: PermutationSpec,
    g: int,
    silent: tuple[np.ndarray, np.ndarray],
    named_a: dict[str, np.ndarray],
    b: np.ndarray,
    perms: list[np.ndarray],
) -> None:
    """Units silent on every example (dead ReLUs) tell activation matching nothing: any pairing
    of them scores the same. The units paired with a silent unit on either side are paired again
    by their weights instead (in place in ``perms[g]``)."""
    silent_a, silent_b = silent
    perm = perms[g]
    rows = np.flatnonzero(silent_a | silent_b[perm])
    if rows.size < 2:
        return
    cols = perm[rows]
    cost = _weight_cost(spec, g, named_a, b, perms)[np.ix_(rows, cols)]
    perm[rows] = cols[_assignment(cost)]


def _capture(store: dict[int, torch.Tensor], group: int, n_units: int) -> Any:
    """A forward pre-hook keeping the input of a layer as (rows, units) float64."""

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0]
        rows = x.reshape(x.shape[0], n_units, -1).transpose(1, 2).reshape(-1, n_units)
        store[group] = rows.to(torch.float64)

    return hook
