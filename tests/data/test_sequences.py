"""``SequenceDataModule``: additions of two numbers written as tokens, the sum's digits reversed,
labels only on the answer; deterministic from a seed; dict batches a causal language model takes."""

from __future__ import annotations

import pytest
import torch

from loss_landscape_anim import SequenceDataModule
from loss_landscape_anim.data import materialize
from loss_landscape_anim.data.sequences import EQUALS, PLUS, addition_sequences


def number(digits: torch.Tensor) -> int:
    return int("".join(str(int(d)) for d in digits))


@pytest.mark.parametrize("digits", [1, 2, 3])
def test_every_sequence_is_a_correct_sum_lowest_digit_first(digits) -> None:
    ids, labels = addition_sequences(50, digits, seed=1)
    assert ids.shape == labels.shape == (50, 3 * digits + 3)
    assert int(ids.max()) <= EQUALS and int(ids.min()) >= 0
    for row, label in zip(ids, labels, strict=True):
        a, b = number(row[:digits]), number(row[digits + 1 : 2 * digits + 1])
        assert row[digits] == PLUS and row[2 * digits + 1] == EQUALS
        assert number(row[2 * digits + 2 :].flip(0)) == a + b
        assert (label[: 2 * digits + 2] == -100).all()
        assert torch.equal(label[2 * digits + 2 :], row[2 * digits + 2 :])


def test_the_same_seed_gives_the_same_sequences() -> None:
    assert torch.equal(addition_sequences(20, seed=3)[0], addition_sequences(20, seed=3)[0])
    assert not torch.equal(addition_sequences(20, seed=3)[0], addition_sequences(20, seed=4)[0])


def test_batches_are_dicts_of_input_ids_and_labels() -> None:
    data = SequenceDataModule(batch_size=32, n_sequences=100, shuffle=False)
    batches = list(data.train_dataloader())
    assert [len(b["labels"]) for b in batches] == [32, 32, 32, 4]
    assert set(batches[0]) == {"input_ids", "labels"}
    assert data.vocab_size == 12 and data.sequence_length == 9
    X, y = materialize(data, n_examples=10)
    assert isinstance(X, dict) and X["input_ids"].shape == (10, 9) and y.shape == (10, 9)


def test_bad_sizes_are_named() -> None:
    with pytest.raises(ValueError, match="Expected n_sequences to be a positive integer but got 0"):
        SequenceDataModule(n_sequences=0)
