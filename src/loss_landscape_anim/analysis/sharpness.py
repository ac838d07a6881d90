"""``sharpness``: how much the loss rises under weight perturbations of a given radius, the
measures of Andriushchenko, Croce, Müller, Hein & Flammarion (2023, *A Modern Look at the
Relationship between Sharpness and Generalization*).

Perturbations are ``delta = c * u`` with ``u`` in the ball ``||u||_p <= rho`` (p = 2 or
infinity), ``c = |w|`` elementwise for **adaptive** sharpness (Kwon et al. 2021, *ASAM*: invariant
to rescaling the layers of a ReLU network, which leaves the function unchanged) or ``c = 1`` for
**standard** sharpness.

- **Worst case**: ``max_u L(w + c u) - L(w)``, by projected gradient ascent in ``u`` from a
  random point of the ball: steps of ``eta rho`` along the normalised gradient (L2) or its sign
  (Linf), projected back onto the ball; a step that does not raise the loss is undone and
  ``eta`` halved (``eta`` starts at 2, as in the authors' code). The result is the best loss
  found: a lower bound of the maximum, exact for a quadratic with a gap above its top
  eigenvalue.
- **Average case**: ``E_u L(w + c u) - L(w)`` with ``u`` Gaussian of covariance
  ``rho^2 / P`` (L2: ``E ||u||^2 = rho^2``, so ``rho`` is the radius of both cases) or uniform in
  the box ``[-rho, rho]^P`` (Linf), over random draws, with a standard error. For a quadratic
  ``L(w + d) = L(w) + d^T H d / 2`` (at a minimum) the L2 value is ``rho^2 tr(C H C) / (2P)``,
  ``C = diag(c)``. The authors' code draws ``u`` with a standard deviation of ``rho`` per
  coordinate: their ``rho`` is ours over ``sqrt(P)``.

The measures here use the whole evaluation data as one batch (the authors also average over
batches of the training data: "m-sharpness").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .._validate import check_choice, check_positive_int, check_positive_number
from ..evaluate import LossEvaluator
from ..evaluate.gradient import loss_and_gradient
from ..results import Sharpness
from ..results.sharpness import SHARPNESS_KINDS, SHARPNESS_NORMS
from ._evaluators import loss_evaluator
from ._operators import generator
from .curvature import flat_params

__all__ = ["average_case_loss", "sharpness", "worst_case_loss"]

#: The first ascent step, as a multiple of ``rho``.
INITIAL_STEP = 2.0

ValueAndGradient = Callable[[torch.Tensor], tuple[float, torch.Tensor]]


def sharpness(
    model: nn.Module | None = None,
    data: Any = None,
    *,
    rho: float,
    kind: str = "adaptive",
    norm: str = "l2",
    worst_case: bool = True,
    n_steps: int = 20,
    n_samples: int = 100,
    seed: int | None = 0,
    params: Any = None,
    evaluator: LossEvaluator | None = None,
    **evaluator_options: Any,
) -> Sharpness:
    """The sharpness of the mean loss over ``data`` at the model's weights (or ``params``).

    Args:
        model, data, params, evaluator, evaluator_options: as for
            :func:`hessian_eigenvalues` (a :class:`LossEvaluator` here: sharpness needs losses
            and gradients only).
        rho: the radius of the perturbation ball (> 0), in units of ``|w|`` for adaptive
            sharpness, of the weights for standard sharpness.
        kind: ``"adaptive"`` (``delta = |w| * u``) or ``"standard"`` (``delta = u``).
        norm: ``"l2"`` or ``"linf"``, the ball of ``u``.
        worst_case: the worst case (gradient ascent) or the average case (random draws).
        n_steps: loss-and-gradient evaluations of the ascent (worst case).
        n_samples: random perturbations (average case; >= 2).
        seed: seeds the start of the ascent or the draws; None draws a fresh seed.

    Returns:
        a :class:`Sharpness`; see the module docstring for the definitions.
    """
    rho = check_positive_number(rho, "rho")
    kind = check_choice(kind, "kind", SHARPNESS_KINDS)
    norm = check_choice(norm, "norm", SHARPNESS_NORMS)
    if not isinstance(worst_case, bool):
        raise TypeError(f"Expected worst_case to be True or False but got {worst_case!r}")
    n_steps = check_positive_int(n_steps, "n_steps")
    n_samples = check_positive_int(n_samples, "n_samples")
    if not worst_case and n_samples < 2:
        raise ValueError(f"Expected n_samples to be at least 2 but got {n_samples}")
    evaluator = loss_evaluator(model, data, evaluator, evaluator_options)
    w = flat_params(evaluator.model.module, params)
    w = w.to(evaluator.device, evaluator.model.dtype)
    scale = w.abs().double() if kind == "adaptive" else torch.ones_like(w, dtype=torch.float64)
    rng = generator(seed)
    if worst_case:

        def value_and_grad(v: torch.Tensor) -> tuple[float, torch.Tensor]:
            return loss_and_gradient(evaluator.model, evaluator.data, v)

        base, _ = value_and_grad(w)
        found, delta = worst_case_loss(value_and_grad, w, scale, rho, norm, n_steps, rng)
        value, stderr, delta_norm, count = found - base, math.nan, float(delta.norm()), n_steps
    else:

        def losses(W: torch.Tensor) -> np.ndarray:
            return evaluator.weight_losses(W.cpu().numpy())

        base = float(losses(w.double()[None])[0])
        mean, stderr, delta_norm = average_case_loss(losses, w, scale, rho, norm, n_samples, rng)
        value, count = mean - base, n_samples
    return Sharpness(
        value=value,
        stderr=stderr,
        rho=rho,
        kind=kind,
        norm=norm,
        worst_case=worst_case,
        loss=base,
        delta_norm=delta_norm,
        n_iterations=count,
        n_examples=evaluator.n_examples,
        precision=evaluator.precision,
    )


def worst_case_loss(
    value_and_grad: ValueAndGradient,
    w: torch.Tensor,
    scale: torch.Tensor,
    rho: float,
    norm: str,
    n_steps: int,
    rng: torch.Generator,
) -> tuple[float, torch.Tensor]:
    """The largest loss found in ``{w + scale * u : ||u||_norm <= rho}`` by projected gradient
    ascent in ``u`` (see the module docstring) with ``n_steps`` evaluations of
    ``value_and_grad`` (loss, gradient (P,)) at weights (P,), and its perturbation
    ``scale * u`` (P,) float64."""
    u = _project(_random_in_ball(w.shape[0], rho, norm, rng).to(w.device), rho, norm)
    best, gradient = value_and_grad(_perturbed(w, scale, u))
    step = INITIAL_STEP
    for _ in range(n_steps - 1):
        direction = _ascent_direction(scale * gradient, norm)
        if direction is None:  # a flat point: no direction raises the loss
            break
        candidate = _project(u + step * rho * direction, rho, norm)
        value, candidate_gradient = value_and_grad(_perturbed(w, scale, candidate))
        if value > best:
            u, best, gradient = candidate, value, candidate_gradient
        else:
            step /= 2
    return best, scale * u


def average_case_loss(
    losses: Callable[[torch.Tensor], np.ndarray],
    w: torch.Tensor,
    scale: torch.Tensor,
    rho: float,
    norm: str,
    n_samples: int,
    rng: torch.Generator,
) -> tuple[float, float, float]:
    """The mean of ``losses`` (K,) at ``w + scale * u`` for ``n_samples`` random ``u`` (Gaussian
    with ``E ||u||^2 = rho^2`` for L2, uniform in the Linf ball of radius ``rho``), its standard
    error and the mean L2 norm of the perturbations ``scale * u``."""
    P = w.shape[0]
    if norm == "l2":
        U = torch.randn(n_samples, P, generator=rng, dtype=torch.float64) * (rho / math.sqrt(P))
    else:
        U = (torch.rand(n_samples, P, generator=rng, dtype=torch.float64) * 2 - 1) * rho
    deltas = scale.cpu()[None] * U
    values = losses(w.double().cpu()[None] + deltas)
    stderr = float(values.std(ddof=1) / math.sqrt(n_samples))
    return float(values.mean()), stderr, float(deltas.norm(dim=1).mean())


def _perturbed(w: torch.Tensor, scale: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return (w.double() + scale * u).to(w.dtype)


def _random_in_ball(P: int, rho: float, norm: str, rng: torch.Generator) -> torch.Tensor:
    """A random point (P,) float64 of the ball: on the L2 sphere, or uniform in the Linf box."""
    if norm == "l2":
        z = torch.randn(P, generator=rng, dtype=torch.float64)
        return z * (rho / z.norm())
    return (torch.rand(P, generator=rng, dtype=torch.float64) * 2 - 1) * rho


def _ascent_direction(g: torch.Tensor, norm: str) -> torch.Tensor | None:
    """The steepest-ascent direction of unit ``norm`` for the gradient ``g``, None if g = 0."""
    size = float(g.norm())
    if size == 0 or not math.isfinite(size):
        return None
    return g / size if norm == "l2" else torch.sign(g)


def _project(u: torch.Tensor, rho: float, norm: str) -> torch.Tensor:
    """``u`` projected onto the ball of radius ``rho``."""
    if norm == "l2":
        size = float(u.norm())
        return u * (rho / size) if size > rho else u
    return u.clamp(-rho, rho)
