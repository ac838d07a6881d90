"""``connect``: train a low-loss curve between two solutions (Garipov et al. 2018, "Loss surfaces,
mode connectivity, and fast ensembling of DNNs"; Draxler et al. 2018, "Essentially no barriers in
neural network energy landscape").

The ends stay fixed; the bends are trained to minimise the expected loss over ``t ~ U(0, 1)`` of
the curve's point ``phi(t)``: at each step a fresh ``t`` (or a few) is drawn from a seeded
generator and the loss at ``phi(t)`` on a batch is one stochastic sample of that objective. The
model is a pure function of its weights (``torch.func.functional_call`` on a private copy): the
caller's model and the global RNG are never touched.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .._runtime import (
    NumThreads,
    check_seed,
    is_small_model,
    progress_bar,
    resolve_device,
    thread_scope,
)
from .._validate import (
    check_choice,
    check_optional_positive_int,
    check_positive_int,
    check_positive_number,
)
from ..data.batches import Inputs, take
from ..evaluate.data import EvalData
from ..evaluate.functional import FunctionalModel
from ..params.layout import ParamLayout
from ..results import Curve
from ..results.curve import CURVE_KINDS, curve_coefficients
from .loss_line import _flat as flat_weights

__all__ = ["CURVE_OPTIMIZERS", "DEFAULT_CURVE_RECORDS", "connect"]

#: Rows of the curve's history recorded by default (spread evenly over the steps), enough for a
#: smooth animation of the bends moving.
DEFAULT_CURVE_RECORDS = 60
#: The optimizers the bends can be trained with: Adam, or SGD with Nesterov-free momentum 0.9
#: (Garipov et al.'s choice).
CURVE_OPTIMIZERS = ("adam", "sgd")
_MOMENTUM = 0.9


def connect(
    model: nn.Module,
    data: Any,
    start: Any,
    end: Any,
    *,
    curve: str = "bezier",
    n_bends: int = 1,
    epochs: int = 100,
    lr: float = 1e-2,
    optimizer: str = "adam",
    batch_size: int | None = None,
    t_per_batch: int = 1,
    seed: int = 0,
    record_every: int | None = None,
    labels: tuple[str, str] = ("start", "end"),
    device: str | torch.device | None = None,
    n_examples: int | None = None,
    num_threads: NumThreads = None,
    progress: bool = True,
) -> Curve:
    """Train the bends of a curve from ``start`` to ``end`` along which the loss stays low.

    Args:
        model: supplies the architecture and ``loss_fn``; its own weights are not used or changed.
            BatchNorm layers use the statistics of each batch while the bends train.
        data: the training data (a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``),
            read once into memory.
        start, end: the two solutions: flat weight vectors (arrays, tensors, rows of a
            :class:`Trajectory`) or models of the same architecture.
        curve: ``"bezier"`` (a Bezier curve with the bends as inner control points) or
            ``"polychain"`` (a polygonal chain through them).
        n_bends: bends between the ends (>= 1); they start evenly spaced on the straight line,
            so the untrained curve is that line.
        epochs: passes over the data.
        lr: the bends' learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).
        batch_size: examples per step (default: the data module's ``batch_size``, else the whole
            data set in one batch).
        t_per_batch: points of the curve sampled per batch (their losses averaged): more gives a
            less noisy objective per step, at that many forward passes.
        seed: seeds the batch order and the sampled ``t`` (a private ``torch.Generator``).
        record_every: record the bends every this many steps (default: about
            :data:`DEFAULT_CURVE_RECORDS` rows); the initial and final bends are always recorded.
        labels: names of the two ends.
        device: where to train; default CPU.
        n_examples: train on the first ``n_examples`` examples only.
        num_threads: CPU threads (restored afterwards): a count, ``"auto"`` or None.
        progress: show a progress bar.

    Returns:
        A :class:`Curve` with its training losses and the history of its bends.
    """
    kind = check_choice(curve, "curve", CURVE_KINDS)
    n_bends = check_positive_int(n_bends, "n_bends")
    epochs = check_positive_int(epochs, "epochs")
    lr = check_positive_number(lr, "lr")
    optimizer = check_choice(optimizer, "optimizer", CURVE_OPTIMIZERS)
    t_per_batch = check_positive_int(t_per_batch, "t_per_batch")
    record_every = check_optional_positive_int(record_every, "record_every")
    checked_seed = check_seed(seed)
    if checked_seed is None:
        raise ValueError(
            "Expected seed to be an integer (it seeds the batches and the t drawn) but got None"
        )
    layout = ParamLayout.of(_module(model))
    a, b = flat_weights(start, layout, "start"), flat_weights(end, layout, "end")
    if np.array_equal(a, b):
        raise ValueError("Expected start and end to differ but they are the same weights")
    torch_device = resolve_device(device)
    functional = FunctionalModel(model, torch_device)
    batch_norm_in_training_mode(functional.module)
    examples = EvalData.prepare(data, torch_device, functional.dtype, n_examples)
    functional.check(*examples.head(2))
    batch = _batch_size(batch_size, data, examples.n_examples)
    n_steps = epochs * -(-examples.n_examples // batch)
    every = record_every or max(1, math.ceil(n_steps / (DEFAULT_CURVE_RECORDS - 1)))
    trainer = _BendTrainer(functional, kind, n_bends, a, b, optimizer, lr, checked_seed)
    small = is_small_model(layout.n_params, torch_device)
    with thread_scope(num_threads, small=small):
        losses, history, steps = trainer.run(examples, batch, epochs, t_per_batch, every, progress)
    return Curve(
        a,
        b,
        history[-1],
        kind,
        np.asarray(losses, dtype=np.float64),
        np.stack(history),
        np.asarray(steps, dtype=np.int64),
        (str(labels[0]), str(labels[1])),
        lr,
        examples.n_examples,
    )


class _BendTrainer:
    """The bends as one trainable tensor (B, P) in the model's dtype, between fixed ends."""

    def __init__(
        self,
        functional: FunctionalModel,
        kind: str,
        n_bends: int,
        start: np.ndarray,
        end: np.ndarray,
        optimizer: str,
        lr: float,
        seed: int,
    ):
        self.functional, self.kind = functional, kind
        dtype, device = functional.dtype, functional.device
        shares = np.arange(1, n_bends + 1, dtype=np.float64)[:, None] / (n_bends + 1)
        initial = start[None] + shares * (end - start)[None]  # evenly spaced on the line
        self.start = torch.as_tensor(start, dtype=dtype, device=device)
        self.end = torch.as_tensor(end, dtype=dtype, device=device)
        self.bends = torch.tensor(initial, dtype=dtype, device=device, requires_grad=True)
        self.optimizer = (
            torch.optim.Adam([self.bends], lr=lr)
            if optimizer == "adam"
            else torch.optim.SGD([self.bends], lr=lr, momentum=_MOMENTUM)
        )
        self.generator = torch.Generator().manual_seed(seed)

    def snapshot(self) -> np.ndarray:
        return self.bends.detach().cpu().numpy().astype(np.float64)

    def step(self, xb: Inputs, yb: torch.Tensor, t_per_batch: int) -> float:
        ts = torch.rand(t_per_batch, generator=self.generator, dtype=torch.float64).numpy()
        coefficients = torch.as_tensor(
            curve_coefficients(self.kind, self.bends.shape[0], ts),
            dtype=self.bends.dtype,
            device=self.bends.device,
        )
        weights = (
            coefficients[:, :1] * self.start
            + coefficients[:, 1:-1] @ self.bends
            + coefficients[:, -1:] * self.end
        )
        model = self.functional
        loss = torch.stack([model.loss(model.params(w), xb, yb) for w in weights]).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def run(
        self,
        data: EvalData,
        batch: int,
        epochs: int,
        t_per_batch: int,
        every: int,
        progress: bool,
    ) -> tuple[list[float], list[np.ndarray], list[int]]:
        """Train; the loss of every step, and the bends every ``every`` steps (and at the end)."""
        losses: list[float] = []
        history, steps = [self.snapshot()], [0]
        bar = progress_bar(range(epochs), enabled=progress, desc="curve", unit="epoch")
        for _ in bar:
            order = torch.randperm(data.n_examples, generator=self.generator).to(data.y.device)
            for lo in range(0, data.n_examples, batch):
                index = order[lo : lo + batch]
                loss = self.step(take(data.X, index), data.y[index], t_per_batch)
                losses.append(loss if math.isfinite(loss) else math.nan)
                if len(losses) % every == 0:
                    history.append(self.snapshot())
                    steps.append(len(losses))
            bar.set_postfix(loss=f"{losses[-1]:.4g}", refresh=False)
        if steps[-1] != len(losses):
            history.append(self.snapshot())
            steps.append(len(losses))
        return losses, history, steps


def batch_norm_in_training_mode(module: nn.Module) -> None:
    """BatchNorm layers of the private copy normalise with each batch's statistics while the
    bends train (as the network was trained); every other layer stays in eval mode."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train()


def _batch_size(batch_size: int | None, data: Any, n_examples: int) -> int:
    batch_size = check_optional_positive_int(batch_size, "batch_size")
    if batch_size is None:
        declared = getattr(data, "batch_size", None)
        batch_size = declared if isinstance(declared, int) and declared > 0 else n_examples
    return min(batch_size, n_examples)


def _module(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected model to be a torch.nn.Module but got {type(model).__name__}")
    return model
