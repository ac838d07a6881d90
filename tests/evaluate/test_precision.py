"""Opt-in reduced precision: ``precision="bf16"`` runs the grid under autocast, is recorded, and
stays within bfloat16's error of float32; refusals name the value and what is accepted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from loss_landscape_anim import LeNet, LossEvaluator, compute_loss_grid, loss_landscape_anim
from loss_landscape_anim.cli import main
from oracle import one_hidden_relu, random_plane, spirals

#: bfloat16 keeps 8 bits of mantissa (eps 2^-8); a loss through a few products and a log-sum-exp
#: accumulates a few of those roundings relative to the logits' scale.
BF16_RTOL = 8 * 2.0**-8


def small_lenet() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(3)
    g = torch.Generator().manual_seed(0)
    return LeNet(), (torch.randn(12, 1, 32, 32, generator=g), torch.randint(0, 10, (12,)))


@pytest.mark.parametrize("case", ["mlp", "lenet"])
def test_bf16_grid_is_recorded_and_close_to_float32(case: str) -> None:
    model, data = (one_hidden_relu(), spirals(150)) if case == "mlp" else small_lenet()
    plane = random_plane(model, scale=0.5)
    exact = compute_loss_grid(model, data, plane, resolution=4, progress=False)
    reduced = compute_loss_grid(model, data, plane, resolution=4, progress=False, precision="bf16")
    assert exact.precision == "float32" and reduced.precision == "bfloat16"
    np.testing.assert_allclose(reduced.loss, exact.loss, rtol=BF16_RTOL)
    assert not np.array_equal(reduced.loss, exact.loss)  # it did compute in bfloat16
    assert not torch.is_autocast_enabled("cpu")  # the scope ended


def test_the_evaluator_reports_its_precision() -> None:
    evaluator = LossEvaluator(one_hidden_relu(), spirals(20), precision="bf16")
    assert evaluator.precision == "bfloat16"
    assert evaluator.identity()["precision"] == "bfloat16"
    assert LossEvaluator(one_hidden_relu(), spirals(20)).precision == "float32"


@pytest.mark.parametrize(
    ("precision", "model", "message"),
    [
        ("fp16", one_hidden_relu, r"precision='fp16' is for GPUs"),
        (
            "half",
            one_hidden_relu,
            r"Expected precision to be None, 'bf16' or 'fp16' but got 'half'",
        ),
        ("bf16", lambda: one_hidden_relu().double(), r"this model's parameters are float64"),
    ],
)
def test_refused_precisions(precision, model, message) -> None:
    with pytest.raises(ValueError, match=message):
        LossEvaluator(model(), spirals(20), precision=precision)


def test_the_one_call_api_checks_precision_before_training(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"Expected precision to be one of 'bf16', 'fp16'"):
        loss_landscape_anim(n_epochs=2, precision="int8", model_dirpath=str(tmp_path))
    with pytest.raises(ValueError, match=r"precision='fp16' is for GPUs"):
        loss_landscape_anim(n_epochs=2, precision="fp16", model_dirpath=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_the_cli_takes_precision(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["--epochs", "3", "--resolution", "6", "--frames", "3", "--no-progress"]
    assert main([*args, "--precision", "BF16", "--output", "p.gif"]) == 0
    assert (tmp_path / "p.gif").stat().st_size > 0


def test_emulated_bf16_is_warned_about(caplog, monkeypatch) -> None:
    from loss_landscape_anim.evaluate import precision

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    with caplog.at_level("WARNING", logger=precision.__name__):
        LossEvaluator(one_hidden_relu(), spirals(20), precision="bf16")
    assert "emulated there and slower than float32" in caplog.text
    caplog.clear()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    with caplog.at_level("WARNING", logger=precision.__name__):
        LossEvaluator(one_hidden_relu(), spirals(20), precision="bf16")
    assert caplog.text == ""
