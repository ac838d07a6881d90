"""Stage 1: ``train`` a copy of a model and record its weights along the way."""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._layout import ParamLayout, flatten_params
from ._runtime import default_threads, progress_bar, resolve_device, seeded, torch_threads
from ._validate import check_optional_positive_int, check_positive_int, check_positive_number
from .data import as_dataloader, split_batch
from .errors import DataError, DivergenceWarning
from .optimizers import OptimizerSpec, check_optimizer_spec, make_optimizer, optimizer_name
from .trajectory import DEFAULT_MEMORY_LIMIT, Trajectory, TrajectoryRecorder

__all__ = ["train"]

logger = logging.getLogger(__name__)

#: With ``record_every=None``, every step is recorded up to this many steps; beyond, steps are
#: thinned evenly to about this many rows.
DEFAULT_MAX_RECORDS = 1000

#: The progress bar's loss is refreshed every this many steps.
_POSTFIX_EVERY = 10

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def loss_function(model: nn.Module) -> LossFn:
    """The model's ``loss_fn`` when it has one, else mean cross-entropy."""
    fn = getattr(model, "loss_fn", None)
    return fn if callable(fn) else F.cross_entropy


def batch_accuracy(y_pred: torch.Tensor, y: torch.Tensor) -> float:
    """Share of correct argmax predictions for class logits (N, C); NaN for other outputs."""
    if y_pred.ndim != 2 or y.ndim != 1 or y.is_floating_point():
        return math.nan
    return float((y_pred.argmax(dim=1) == y).float().mean())


def checked_loss(
    loss_fn: LossFn, y_pred: torch.Tensor, y: torch.Tensor, *, check_labels: bool = True
) -> torch.Tensor:
    """``loss_fn(y_pred, y)``, with a clear error when the output does not fit the targets.

    ``check_labels`` compares class labels with the number of outputs first (a device sync; the
    training loop does it on its first batch, and the loss itself fails on later bad labels)."""
    if (
        check_labels
        and y_pred.ndim == 2
        and y.ndim == 1
        and not y.is_floating_point()
        and y.numel()
    ):
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= y_pred.shape[1]:
            raise DataError(
                f"Expected labels in [0, {y_pred.shape[1] - 1}] for a model with "
                f"{y_pred.shape[1]} outputs but got labels in [{low}, {high}]"
            )
    try:
        loss = loss_fn(y_pred, y)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise DataError(
            f"The model's output of shape {tuple(y_pred.shape)} does not fit the loss with targets "
            f"of shape {tuple(y.shape)} and dtype {y.dtype}: {exc}"
        ) from exc
    if loss.ndim != 0:
        raise DataError(f"Expected the loss to be a scalar but got shape {tuple(loss.shape)}")
    return loss


def default_optimizer(model: nn.Module) -> tuple[OptimizerSpec, float]:
    """The optimizer and learning rate a model declares (GenericModel-style), else Adam at 1e-3."""
    spec = getattr(model, "custom_optimizer", None) or getattr(model, "optimizer", None)
    if not (isinstance(spec, str) or callable(spec)) or isinstance(spec, torch.optim.Optimizer):
        spec = "adam"
    lr = getattr(model, "learning_rate", None)
    return spec, (float(lr) if isinstance(lr, (int, float)) and lr > 0 else 1e-3)


def train(
    model: nn.Module,
    data: Any,
    n_epochs: int,
    *,
    optimizer: OptimizerSpec | None = None,
    learning_rate: float | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
    record_every: int | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    num_threads: int | None = None,
) -> Trajectory:
    """Train a copy of ``model`` on ``data`` for ``n_epochs`` and record the weights.

    The caller's model is not changed: a copy is trained. Row 0 of the result holds the initial
    weights, the last row the final ones; each row is paired with the loss and accuracy of those
    same weights on the batch they were evaluated on.

    Args:
        model: any ``nn.Module``; a ``GenericModel`` also supplies its optimizer, learning rate and
            ``loss_fn`` (cross-entropy otherwise).
        data: a data module (``train_dataloader()``), a ``DataLoader``, a ``Dataset`` or ``(X, y)``.
        n_epochs: number of passes over the data (> 0).
        optimizer: ``"adam"``, ``"sgd"``, ``"adagrad"``, ``"rmsprop"``, an optimizer class or
            factory; default: the model's own (Adam for a plain module).
        learning_rate: default: the model's ``learning_rate`` (1e-3 for a plain module).
        seed: seeds data order and any randomness in training; global RNG state is restored after.
        device: ``"cpu"``, ``"cuda"``, ...; default CPU.
        record_every: record every k-th step; default every step up to 1,000 steps, then thinned
            evenly to about 1,000 rows. The final weights are always recorded.
        batch_size: batch size for a ``Dataset`` or ``(X, y)`` (default full batch).
        progress: show a progress bar.
        memory_limit: bytes of recorded weights kept in memory before spilling to disk.
        num_threads: CPU threads for training (restored afterwards); default: 1 for models with
            fewer than ``SMALL_MODEL_PARAMS`` (100,000) parameters, else torch's setting.
    """
    n_epochs = check_positive_int(n_epochs, "n_epochs")
    record_every = check_optional_positive_int(record_every, "record_every")
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected model to be a torch.nn.Module but got {type(model).__name__}")
    spec, model_lr = default_optimizer(model)
    spec = check_optimizer_spec(optimizer if optimizer is not None else spec)
    lr = check_positive_number(
        learning_rate if learning_rate is not None else model_lr, "learning_rate"
    )
    torch_device = resolve_device(device)
    loader = as_dataloader(data, batch_size=batch_size)
    layout = ParamLayout.of(model)

    num_threads = check_optional_positive_int(num_threads, "num_threads")
    if num_threads is None:
        num_threads = default_threads(layout.n_params, torch_device)
    with seeded(seed, torch_device), torch_threads(num_threads):
        work = copy.deepcopy(model).to(torch_device)
        work.train()
        opt = make_optimizer(spec, work.parameters(), lr)
        steps_per_epoch = _len_or_none(loader)
        total = steps_per_epoch * n_epochs if steps_per_epoch else None
        every = record_every or (max(1, math.ceil(total / DEFAULT_MAX_RECORDS)) if total else 1)
        recorder = TrajectoryRecorder(
            layout.n_params,
            memory_limit=memory_limit,
            expected_rows=total // every + 2 if total else None,
        )
        try:
            diverged = _run(
                work, loader, opt, n_epochs, every, recorder, torch_device, total, progress
            )
        except BaseException:
            recorder.close()
            raise

    if not len(recorder):
        raise DataError(
            "The loss is not finite at the initial weights: nothing to animate. Check the data "
            "for NaN or infinite values and the model's initialisation"
        )
    params = recorder.params()
    return Trajectory(
        params=params,
        loss=torch.tensor(recorder.loss, dtype=torch.float64).numpy(),
        accuracy=torch.tensor(recorder.accuracy, dtype=torch.float64).numpy(),
        steps=torch.tensor(recorder.steps, dtype=torch.int64).numpy(),
        layout=layout,
        optimizer=optimizer_name(spec),
        learning_rate=lr,
        diverged=diverged,
        buffers={k: v.detach().cpu().numpy().copy() for k, v in work.named_buffers()},
    )


def _len_or_none(loader: Any) -> int | None:
    try:
        return len(loader) or None
    except TypeError:
        return None


def _run(
    model: nn.Module,
    loader: Any,
    opt: torch.optim.Optimizer,
    n_epochs: int,
    every: int,
    recorder: TrajectoryRecorder,
    device: torch.device,
    total: int | None,
    progress: bool,
) -> bool:
    """The training loop; returns True when it stopped on non-finite values."""
    loss_fn = loss_function(model)
    dtype = next(model.parameters()).dtype
    step = 0
    last_batch: tuple[torch.Tensor, torch.Tensor] | None = None
    with progress_bar(total=total, enabled=progress, desc="training", unit="step") as bar:
        for _epoch in range(n_epochs):
            for batch in loader:
                x, y = split_batch(batch)
                x = x.to(device, dtype if x.is_floating_point() else x.dtype)
                y = y.to(device)
                y_pred = model(x)
                loss = checked_loss(loss_fn, y_pred, y, check_labels=step == 0)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    return _diverged(step)
                if step % every == 0:
                    flat = flatten_params(model)
                    if not bool(torch.isfinite(flat).all()):
                        return _diverged(step)
                    recorder.append(flat, loss_value, batch_accuracy(y_pred, y), step)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                last_batch = (x, y)
                bar.update(1)
                if step % _POSTFIX_EVERY == 0:
                    bar.set_postfix(loss=f"{loss_value:.4g}", refresh=False)
    if last_batch is None:
        raise DataError("Expected data with at least one batch but the loader yielded none")
    return _record_final(model, loss_fn, last_batch, recorder, step)


def _record_final(
    model: nn.Module,
    loss_fn: LossFn,
    batch: tuple[torch.Tensor, torch.Tensor],
    recorder: TrajectoryRecorder,
    step: int,
) -> bool:
    """Record the final weights, evaluated on the last batch (the whole data when full batch).

    The evaluation runs in training mode, like every other row's, but leaves the buffers
    (BatchNorm statistics) as training left them."""
    kept = {name: b.clone() for name, b in model.named_buffers()}
    with torch.no_grad():
        y_pred = model(batch[0])
        loss = loss_fn(y_pred, batch[1])
        for name, b in model.named_buffers():
            b.copy_(kept[name])
    if not torch.isfinite(loss):
        return _diverged(step)
    flat = flatten_params(model)
    if not bool(torch.isfinite(flat).all()):
        return _diverged(step)
    recorder.append(flat, loss.item(), batch_accuracy(y_pred, batch[1]), step)
    return False


def _diverged(step: int) -> bool:
    warnings.warn(
        f"Training diverged to non-finite values at step {step}; the path stops at the last "
        "finite weights. Try a smaller learning rate.",
        DivergenceWarning,
        stacklevel=4,
    )
    return True
