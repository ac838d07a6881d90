"""A ``peft`` LoRA adapter on a GPT-2 built from a config, fine-tuned with ``Trainer.train()``: the
trajectory, the plane and the grid cover the adapter's weights only, the frozen base model stays
bit-identical, and the grid equals Hugging Face's own loss with the adapter weights of each point
loaded into a copy."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
from test_transformers import Sequences, arguments, gpt2  # noqa: E402
from transformers import Trainer  # noqa: E402

from loss_landscape_anim import compute_loss_grid, project  # noqa: E402
from tolerance import EPS32  # noqa: E402

# peft 0.21 asks transformers 5 for a property it deprecated
pytestmark = pytest.mark.filterwarnings(
    "ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"
)


def lora_gpt2() -> torch.nn.Module:
    config = peft.LoraConfig(
        r=2, lora_alpha=4, lora_dropout=0.0, target_modules=["c_attn"], fan_in_fan_out=True
    )
    return peft.get_peft_model(gpt2(), config)


def test_a_lora_fine_tune_spans_the_adapter_and_keeps_the_base_model(tmp_path) -> None:
    from loss_landscape_anim.transformers import LossLandscapeCallback

    model = lora_gpt2()
    base = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapter = [n for n, p in model.named_parameters() if p.requires_grad]
    assert adapter and all("lora_" in n for n in adapter)
    callback = LossLandscapeCallback()
    Trainer(
        model=model,
        args=arguments(tmp_path, 4, learning_rate=5e-2),
        train_dataset=Sequences(),
        callbacks=[callback],
    ).train()
    trajectory = callback.trajectory
    n_adapter = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_base = sum(p.numel() for p in base.values())
    assert trajectory.layout.names == tuple(adapter)
    assert trajectory.n_params == n_adapter and trajectory.frozen == n_base
    for name, before in base.items():  # frozen weights bit-identical after the run
        assert torch.equal(dict(model.named_parameters())[name], before), name
    assert not np.array_equal(trajectory.params[0], trajectory.params[-1])
    plane = project(trajectory, "pca")
    subspace = f"{n_adapter:,} trainable of {n_adapter + n_base:,} weights: lora_A, lora_B"
    assert plane.subspace == subspace
    assert plane.axis_labels()[0].endswith(f"\n({subspace})")

    batch = {"input_ids": Sequences(n=6, seed=3).ids}
    batch["labels"] = batch["input_ids"]
    grid = compute_loss_grid(model, batch, plane, resolution=3, progress=False)
    work = copy.deepcopy(model).eval()
    for i, yv in enumerate(grid.ys):
        for j, xv in enumerate(grid.xs):
            weights = trajectory.layout.unflatten(
                torch.as_tensor(plane.point(xv, yv), dtype=torch.float32)
            )
            with torch.no_grad():
                for name, value in weights.items():
                    dict(work.named_parameters())[name].copy_(value)
                expected = float(work(**batch).loss)  # Hugging Face's own token mean
            assert grid.loss[i, j] == pytest.approx(expected, rel=64 * EPS32)
