"""Tests of the run-time helpers: which devices are accepted."""

from __future__ import annotations

import pytest
import torch

from loss_landscape_anim import train
from loss_landscape_anim._runtime import resolve_device


def test_cpu_and_default_devices_resolve() -> None:
    assert resolve_device() == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize(
    ("device", "shown"),
    [
        ("meta", r"'meta' \(a device of shapes without values\)"),
        (torch.device("meta"), r"'meta' \(a device of shapes without values\)"),
        ("ipu", "'ipu'"),
        ("not-a-device", "'not-a-device'"),
    ],
)
def test_devices_nothing_can_be_computed_on_are_refused(device, shown) -> None:
    with pytest.raises(
        ValueError, match=r"Expected device to be 'cpu', 'cuda', 'cuda:N' or 'mps' but got " + shown
    ):
        resolve_device(device)


def test_train_refuses_the_meta_device_before_training() -> None:
    X, y = torch.randn(8, 2), torch.randint(0, 2, (8,))
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="but got 'meta'"):
        train(model, (X, y), 1, device="meta", progress=False)
