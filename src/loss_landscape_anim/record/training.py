"""Stage 1: ``train`` a copy of a model and record its weights along the way."""

from __future__ import annotations

import copy
import inspect
import logging
import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .._runtime import (
    NumThreads,
    is_small_model,
    progress_bar,
    resolve_device,
    seeded,
    thread_scope,
)
from .._validate import (
    check_model,
    check_optional_positive_int,
    check_positive_int,
    check_positive_number,
)
from ..data import Inputs, as_dataloader, split_batch
from ..data.batches import as_call, inputs_to
from ..data.checks import check_finite_batch, check_finite_data
from ..errors import DataError, DivergenceWarning
from ..losses import Loss, as_targets, checked_loss, loss_for, predictions
from ..optimizers import OptimizerSpec, build_optimizer, check_optimizer_spec, optimizer_summary
from ..params.layout import ParamLayout
from ..params.store import DEFAULT_MEMORY_LIMIT
from ..results.trajectory import Trajectory
from .recorder import TrajectoryRecorder

__all__ = ["train"]

logger = logging.getLogger(__name__)

#: With ``record_every=None``, every step is recorded up to this many steps; beyond, steps are
#: thinned evenly to about this many rows.
DEFAULT_MAX_RECORDS = 1000

#: The progress bar's loss is refreshed every this many steps.
_POSTFIX_EVERY = 10


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
    num_threads: NumThreads = None,
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
        num_threads: CPU threads for training (restored afterwards): a count, ``"auto"`` (one
            thread for models under 100,000 parameters on the CPU) or None (torch's setting, the
            default: threads change only when asked).
    """
    n_epochs = check_positive_int(n_epochs, "n_epochs")
    record_every = check_optional_positive_int(record_every, "record_every")
    check_trainable(model)
    if optimizer is not None:
        check_optimizer_spec(optimizer)
    if learning_rate is not None:
        check_positive_number(learning_rate, "learning_rate")
    torch_device = resolve_device(device)
    loader = as_dataloader(data, batch_size=batch_size)
    checked = check_finite_data(data) or check_finite_data(loader)
    small = is_small_model(ParamLayout.of(model).n_params, torch_device)

    with seeded(seed, torch_device), thread_scope(num_threads, small=small):
        work = copy.deepcopy(model).to(torch_device)
        work.train()
        opt = build_optimizer(work, optimizer, learning_rate)
        name, lr = optimizer_summary(opt)
        steps_per_epoch = _len_or_none(loader)
        total = steps_per_epoch * n_epochs if steps_per_epoch else None
        every = record_every or (max(1, math.ceil(total / DEFAULT_MAX_RECORDS)) if total else 1)
        recorder = TrajectoryRecorder(
            work,
            every=every,
            memory_limit=memory_limit,
            expected_rows=total // every + 2 if total else None,
            optimizer=name,
            learning_rate=lr,
        )
        try:
            diverged = _run(
                work, loader, opt, n_epochs, recorder, torch_device, total, progress, checked
            )
        except BaseException:
            recorder.close()
            raise

    if not len(recorder):
        raise DataError(
            "The loss is not finite at the initial weights: nothing to animate. Check the data "
            "for NaN or infinite values and the model's initialisation"
        )
    return recorder.trajectory(diverged=diverged)


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
    recorder: TrajectoryRecorder,
    device: torch.device,
    total: int | None,
    progress: bool,
    checked: bool,
) -> bool:
    """The training loop; returns True when it stopped on non-finite values. Data not ``checked``
    for non-finite values before training are checked batch by batch in the first epoch. The
    loss is decided on the first batch (:func:`~loss_landscape_anim.losses.loss_for`)."""
    loss_fn: Loss | None = None
    dtype = next(model.parameters()).dtype
    closure_step = needs_closure(opt)
    step = 0
    last_batch: tuple[Inputs, torch.Tensor] | None = None
    with progress_bar(total=total, enabled=progress, desc="training", unit="step") as bar:
        for epoch in range(n_epochs):
            for k, batch in enumerate(loader):
                x, y = split_batch(batch)
                if epoch == 0 and not checked:
                    check_finite_batch(x, y, k)
                x = inputs_to(x, device, dtype)
                y = as_targets(torch.as_tensor(y).to(device))
                y_pred = predict(model, x)
                if loss_fn is None:
                    loss_fn = loss_for(model, y_pred, y, named=isinstance(x, dict))
                loss = checked_loss(loss_fn, y_pred, y, check_labels=step == 0)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    return _diverged(step)
                if recorder.due(step) and not recorder.record(
                    step, loss_value, loss_fn.accuracy(y_pred, y)
                ):
                    return _diverged(step)
                if closure_step:
                    opt.step(_closure(model, loss_fn, opt, x, y, loss))
                else:
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                step += 1
                last_batch = (x, y)
                bar.update(1)
                if step % _POSTFIX_EVERY == 0:
                    bar.set_postfix(loss=f"{loss_value:.4g}", refresh=False)
    if last_batch is None or loss_fn is None:
        raise DataError("Expected data with at least one batch but the loader yielded none")
    return _record_final(model, loss_fn, last_batch, recorder, step)


def predict(model: nn.Module, x: Inputs) -> torch.Tensor:
    """The model's predictions on ``x`` (a tensor, or named inputs passed as keyword
    arguments): the output, or the ``logits`` of a Hugging Face ``ModelOutput``."""
    args, kwargs = as_call(x)
    return predictions(model(*args, **kwargs))


def needs_closure(optimizer: torch.optim.Optimizer) -> bool:
    """True for an optimizer whose ``step`` requires a closure that re-evaluates the loss
    (``torch.optim.LBFGS``)."""
    try:
        closure = inspect.signature(optimizer.step).parameters.get("closure")
    except (TypeError, ValueError):
        return False
    return closure is not None and closure.default is inspect.Parameter.empty


def _closure(
    model: nn.Module,
    loss_fn: Loss,
    opt: torch.optim.Optimizer,
    x: Inputs,
    y: torch.Tensor,
    loss: torch.Tensor,
) -> Callable[[], Any]:
    """The closure of ``opt.step``: its first call back-propagates ``loss`` (already computed on
    the current weights), later calls re-evaluate the loss on the batch ``(x, y)``."""
    first = [loss]

    def closure() -> Any:  # torch types it as returning a float; it returns the loss tensor
        opt.zero_grad(set_to_none=True)
        value = first.pop() if first else loss_fn(predict(model, x), y)
        value.backward()
        return value

    return closure


def check_trainable(model: Any) -> None:
    """Raise unless ``model`` is an ``nn.Module`` with real (not meta) tensors and at least one
    parameter that requires a gradient."""
    check_model(model)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(
            f"Expected model to have a trainable parameter but every parameter of "
            f"{type(model).__name__} has requires_grad=False: unfreeze the ones to train "
            "(p.requires_grad_(True))"
        )


def _record_final(
    model: nn.Module,
    loss_fn: Loss,
    batch: tuple[Inputs, torch.Tensor],
    recorder: TrajectoryRecorder,
    step: int,
) -> bool:
    """Record the final weights, evaluated on the last batch (the whole data when full batch).

    The evaluation runs in training mode, like every other row's, but leaves the buffers
    (BatchNorm statistics) as training left them."""
    kept = {name: b.clone() for name, b in model.named_buffers()}
    with torch.no_grad():
        y_pred = predict(model, batch[0])
        loss = loss_fn(y_pred, batch[1])
        for name, b in model.named_buffers():
            b.copy_(kept[name])
    if not torch.isfinite(loss):
        return _diverged(step)
    if not recorder.record(step, loss.item(), loss_fn.accuracy(y_pred, batch[1])):
        return _diverged(step)
    return False


def _diverged(step: int) -> bool:
    warnings.warn(
        f"Training diverged to non-finite values at step {step}; the path stops at the last "
        "finite weights. Try a smaller learning rate.",
        DivergenceWarning,
        stacklevel=4,
    )
    return True
