"""Batches as models take them: the inputs and the targets of a loader's batch.

The inputs are a tensor (an ``(x, y)`` pair's ``x``, passed to the model as its one argument) or a
dict of tensors passed as keyword arguments: the batches of Hugging Face models
(``input_ids``, ``attention_mask``, ...; a ``transformers.BatchEncoding`` is such a dict), whose
targets are the batch's ``labels``. Everything here handles both forms alike, so the rest of the
package can cut, move, join and hash inputs without knowing which form they have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..errors import DataError

__all__ = [
    "LABEL_KEYS",
    "PAD_LABEL",
    "Inputs",
    "align_next_token",
    "as_call",
    "concat_inputs",
    "concat_targets",
    "input_tensors",
    "inputs_to",
    "n_examples",
    "split_batch",
    "take",
    "trim_to_labels",
]

#: Inputs of a batch: a tensor, or named tensors passed to the model as keyword arguments.
Inputs = torch.Tensor | dict[str, torch.Tensor]
#: The keys of a dict batch that hold its targets (the first found), as Hugging Face names them.
LABEL_KEYS = ("labels", "label")
#: The label of padded positions: the ignore index of the token losses (Hugging Face's -100).
PAD_LABEL = -100


def split_batch(batch: Any) -> tuple[Inputs, torch.Tensor]:
    """``(inputs, targets)`` from a loader's batch: an ``(x, y)`` pair (or a longer sequence whose
    first two items are x, y), or a dict (``transformers.BatchEncoding`` included) whose
    ``labels`` (or ``label``) are the targets and whose other entries are the model's keyword
    inputs."""
    if isinstance(batch, Mapping):
        key = next((k for k in LABEL_KEYS if k in batch), None)
        if key is None:
            raise DataError(
                "Expected a dict batch to hold its targets under 'labels' (or 'label') but it "
                f"has keys {sorted(map(str, batch))}"
            )
        inputs = {str(k): _tensor(v, str(k)) for k, v in batch.items() if k not in LABEL_KEYS}
        if not inputs:
            raise DataError(f"Expected a dict batch with inputs besides {key!r} but got none")
        return inputs, _tensor(batch[key], key)
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise DataError(
        "Expected each batch to be an (x, y) pair or a dict with 'labels' but got "
        f"{type(batch).__name__}"
        + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
    )


def _tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(
            f"Expected the batch's {name!r} to be a tensor (or numbers a tensor can be made of) "
            f"but got {type(value).__name__}: {exc}"
        ) from None


def input_tensors(inputs: Inputs) -> list[tuple[str, torch.Tensor]]:
    """The tensors of ``inputs`` with their names (``"inputs"`` for a plain tensor), keys in
    sorted order."""
    if isinstance(inputs, dict):
        return [(k, inputs[k]) for k in sorted(inputs)]
    return [("inputs", inputs)]


def n_examples(inputs: Inputs) -> int:
    """The number of examples of ``inputs`` (their leading dimension); ``DataError`` for named
    inputs whose leading dimensions differ."""
    sizes = {name: int(t.shape[0]) if t.ndim else 1 for name, t in input_tensors(inputs)}
    if len(set(sizes.values())) > 1:
        raise DataError(
            f"Expected the batch's inputs to hold as many examples each but got {sizes}"
        )
    return next(iter(sizes.values()))


def take(inputs: Inputs, index: slice | torch.Tensor | int | None) -> Inputs:
    """``inputs`` indexed along the examples by ``index``: a slice or an index tensor (those
    examples), an int (one example, without its batch axis) or None (a new batch axis)."""
    if isinstance(inputs, dict):
        return {k: v[index] for k, v in inputs.items()}
    return inputs[index]


def inputs_to(inputs: Inputs, device: torch.device, dtype: torch.dtype) -> Inputs:
    """``inputs`` on ``device``, floating tensors in ``dtype`` (the model's), others (token ids,
    masks) in their own dtype."""

    def move(t: torch.Tensor) -> torch.Tensor:
        return t.to(device, dtype if t.is_floating_point() else t.dtype)

    if isinstance(inputs, dict):
        return {k: move(v) for k, v in inputs.items()}
    return move(inputs)


def as_call(inputs: Inputs) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    """``(args, kwargs)`` to call a model with: a tensor as its one argument, named inputs as
    keyword arguments."""
    if isinstance(inputs, dict):
        return (), dict(inputs)
    return (inputs,), {}


def concat_inputs(parts: Sequence[Inputs]) -> Inputs:
    """The batches ``parts`` joined along the examples. Named inputs of sequences of different
    lengths (batches padded each to its own longest sequence) are padded on the right to the
    longest with 0 (an ``attention_mask`` then masks the padding out; a causal model's real
    tokens never see what follows them)."""
    first = parts[0]
    if not isinstance(first, dict):
        return torch.cat(list(parts))  # type: ignore[arg-type]
    keys = set(first)
    for part in parts:
        if not isinstance(part, dict) or set(part) != keys:
            got = sorted(part) if isinstance(part, dict) else type(part).__name__
            raise DataError(f"Expected every batch to hold the inputs {sorted(keys)} but got {got}")
    return {k: _padded_cat([p[k] for p in parts], 0) for k in first}  # type: ignore[index]


def concat_targets(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """Targets joined along the examples; integer label sequences of different lengths padded on
    the right with :data:`PAD_LABEL` (ignored by the token losses)."""
    return _padded_cat(list(parts), PAD_LABEL)


def _padded_cat(tensors: list[torch.Tensor], value: int) -> torch.Tensor:
    shapes = {tuple(t.shape[1:]) for t in tensors}
    if len(shapes) == 1 or any(t.ndim < 2 or t.is_floating_point() for t in tensors):
        return torch.cat(tensors)
    if len({tuple(t.shape[2:]) for t in tensors}) > 1:
        return torch.cat(tensors)  # torch names the shapes that differ
    length = max(int(t.shape[1]) for t in tensors)
    padded = []
    for t in tensors:
        extra = length - int(t.shape[1])
        if extra:
            filler = t.new_full((t.shape[0], extra, *t.shape[2:]), value)
            t = torch.cat([t, filler], dim=1)
        padded.append(t)
    return torch.cat(padded)


def align_next_token(inputs: Inputs, targets: torch.Tensor) -> tuple[Inputs, torch.Tensor] | None:
    """Named inputs of sequences (N, L, ...) and their labels (N, L) with the next-token shift
    made: the inputs without their last position, the labels without their first, so that
    position t's prediction is scored against label t (what a causal language model's loss does
    by shifting). None when the inputs are not all sequences of the labels' length."""
    if not isinstance(inputs, dict) or targets.ndim != 2 or targets.shape[1] < 2:
        return None
    length = targets.shape[1]
    if not all(t.ndim >= 2 and t.shape[1] == length for t in inputs.values()):
        return None
    return {k: v[:, :-1] for k, v in inputs.items()}, targets[:, 1:]


def trim_to_labels(inputs: Inputs, targets: torch.Tensor) -> tuple[Inputs, torch.Tensor]:
    """Aligned sequences (see :func:`align_next_token`) cut after their last position that has
    a label: for a causal model the positions after it change nothing the loss reads (padding,
    an unlabelled tail), so they need not be computed."""
    used = (targets != PAD_LABEL).any(dim=0).nonzero()
    end = int(used.max()) + 1 if used.numel() else 1
    if end == targets.shape[1]:
        return inputs, targets
    return {k: v[:, :end] for k, v in inputs.items()}, targets[:, :end]  # type: ignore[union-attr]
