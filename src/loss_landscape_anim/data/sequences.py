"""``SequenceDataModule``: a built-in token task for language models, generated in code.

Addition of two numbers of ``digits`` digits, written as tokens the way small transformers learn
it best (Lee et al. 2023, "Teaching Arithmetic to Small Transformers": the sum's digits reversed,
lowest first): ``a1 a2 + b1 b2 = s1 s2 s3`` for a + b = s3 s2 s1. The batches are those of a
Hugging Face causal language model, ``{"input_ids", "labels"}``, whose labels are the input ids
with the prompt ``a + b =`` set to -100, so the loss is the model's cross-entropy on the answer's
tokens only (labels shifted by one: position t predicts token t + 1).
"""

from __future__ import annotations

import torch

from .._validate import check_positive_int
from .batches import PAD_LABEL
from .modules import DataModule, NamedDataset

__all__ = ["EQUALS", "PLUS", "SequenceDataModule", "addition_sequences"]

#: The tokens of the task: the digits 0-9 are themselves, then "+" and "=".
PLUS, EQUALS = 10, 11


def addition_sequences(
    n_sequences: int, digits: int = 2, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_sequences`` additions of two random numbers of ``digits`` digits (leading zeros
    written), from ``seed``: token ids (N, 3 * digits + 3) int64, and their labels (the ids,
    with the prompt set to -100)."""
    check_positive_int(n_sequences, "n_sequences")
    check_positive_int(digits, "digits")
    generator = torch.Generator().manual_seed(seed)
    a, b = (torch.randint(0, 10**digits, (n_sequences,), generator=generator) for _ in range(2))

    def written(x: torch.Tensor, k: int) -> torch.Tensor:
        return torch.stack([(x // 10**i) % 10 for i in reversed(range(k))], dim=1)

    def token(value: int) -> torch.Tensor:
        return torch.full((n_sequences, 1), value)

    answer = written(a + b, digits + 1).flip(1)  # lowest digit first
    ids = torch.cat([written(a, digits), token(PLUS), written(b, digits), token(EQUALS), answer], 1)
    labels = ids.clone()
    labels[:, : 2 * digits + 2] = PAD_LABEL
    return ids, labels


class SequenceDataModule(DataModule):
    """The built-in token task (see the module docstring): ``n_sequences`` additions of two
    ``digits``-digit numbers from ``seed`` (256 of 2 digits by default: 9 tokens each, 3 of them
    labelled), full batch by default. Made for :class:`~loss_landscape_anim.TinyGPT`, whose
    vocabulary (``vocab_size`` = 12) and sequence length fit it.

    Batches are dicts ``{"input_ids": (B, L), "labels": (B, L)}``, as a Hugging Face causal
    language model takes them."""

    #: Tokens: the digits 0-9, "+" and "=".
    vocab_size = 12

    def __init__(
        self,
        batch_size: int | None = None,
        *,
        n_sequences: int = 256,
        digits: int = 2,
        seed: int = 0,
        shuffle: bool = True,
        num_workers: int = 0,
    ):
        super().__init__(batch_size, shuffle=shuffle, num_workers=num_workers)
        ids, labels = addition_sequences(n_sequences, digits, seed=seed)
        self.dataset = NamedDataset({"input_ids": ids}, labels)
        self.sequence_length = int(ids.shape[1])
