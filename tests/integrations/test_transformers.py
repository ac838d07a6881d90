"""``loss_landscape_anim.transformers.LossLandscapeCallback`` in real ``Trainer.train()`` runs of a
GPT-2 built from a config (2 layers, 32-wide embeddings, random weights, no model hub): rows after
each optimizer step paired with the loss of the batch measured on them (checked by loading each
row into a copy), resumed training continuing the trajectory, the landscape at the end written
and logged to the trainer's TensorBoard run, and the install hint."""

from __future__ import annotations

import copy
import importlib
import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

transformers = pytest.importorskip("transformers")
pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402
from transformers import (  # noqa: E402
    GPT2Config,
    GPT2LMHeadModel,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from loss_landscape_anim import Trajectory  # noqa: E402
from loss_landscape_anim.losses import token_cross_entropy  # noqa: E402
from loss_landscape_anim.params import ParamLayout  # noqa: E402
from tolerance import EPS32  # noqa: E402

VOCAB, LENGTH = 40, 10


class Sequences(Dataset):
    """Random token sequences, labelled as a causal language model's (the ids themselves)."""

    def __init__(self, n: int = 24, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, VOCAB, (n, LENGTH), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def gpt2(seed: int = 0) -> GPT2LMHeadModel:
    """A GPT-2 of 2 layers and 32-wide embeddings from a config, without dropout (so that a
    training step's loss is the loss of the row's weights on its batch)."""
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=2,
        vocab_size=VOCAB,
        n_positions=LENGTH,
        bos_token_id=0,
        eos_token_id=0,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return GPT2LMHeadModel(config)


def arguments(tmp_path, max_steps: int, **changes) -> TrainingArguments:
    options = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        max_steps=max_steps,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    return TrainingArguments(**{**options, **changes})


def train_reporting(callback, tmp_path, max_steps: int, report_to: str) -> Trainer:
    """A tiny GPT-2 trained ``max_steps`` steps with ``callback``, logging every step to the
    ``report_to`` integration."""
    trainer = Trainer(
        model=gpt2(),
        args=arguments(tmp_path, max_steps, report_to=[report_to], logging_steps=1),
        train_dataset=Sequences(),
        callbacks=[callback],
    )
    trainer.train()
    return trainer


class Snapshots(TrainerCallback):
    """The oracle's record: the trainable weights after each step and each training batch."""

    def __init__(self, model: torch.nn.Module):
        self.layout = ParamLayout.of(model)
        self.weights: dict[int, np.ndarray] = {}
        self.batches: list[torch.Tensor] = []
        model.register_forward_pre_hook(self._batch, with_kwargs=True)

    def _batch(self, module, args, kwargs):
        if module.training:
            self.batches.append(kwargs["input_ids"].detach().clone())

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.weights[state.global_step] = self.layout.flatten(model).numpy().copy()

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.weights[state.global_step] = self.layout.flatten(model).numpy().copy()


def row_loss(model: torch.nn.Module, weights: np.ndarray, ids: torch.Tensor) -> float:
    """The oracle: the mean token cross-entropy (labels shifted) of ``ids`` with ``weights``."""
    work = copy.deepcopy(model).eval()
    ParamLayout.of(work)  # the same layout as the recording's
    trainable = [p for p in work.parameters() if p.requires_grad]
    torch.nn.utils.vector_to_parameters(torch.as_tensor(weights), trainable)
    with torch.no_grad():
        return float(token_cross_entropy(work(input_ids=ids).logits, ids, shift=True))


def test_rows_hold_the_weights_after_each_step_with_their_batchs_loss(tmp_path) -> None:
    from loss_landscape_anim.transformers import LossLandscapeCallback

    model = gpt2()
    callback, snapshots = LossLandscapeCallback(), Snapshots(model)
    trainer = Trainer(
        model=model,
        args=arguments(tmp_path, 4),
        train_dataset=Sequences(),
        callbacks=[snapshots, callback],
    )
    trainer.train()
    trajectory = callback.trajectory
    np.testing.assert_array_equal(trajectory.steps, [0, 1, 2, 3, 4])
    assert trajectory.n_params == sum(p.numel() for p in model.parameters())
    assert trajectory.optimizer == "adamw" and trajectory.learning_rate == pytest.approx(1e-2)
    for t in range(5):
        np.testing.assert_array_equal(trajectory.params[t], snapshots.weights[t])
    for t in range(4):  # the batch of step t + 1 was measured on the weights of row t
        expected = row_loss(model, trajectory.params[t], snapshots.batches[t])
        assert trajectory.loss[t] == pytest.approx(expected, rel=64 * EPS32)
    assert np.isnan(trajectory.loss[4])  # no batch measured the final weights
    assert np.all((trajectory.accuracy[:4] >= 0) & (trajectory.accuracy[:4] <= 1))


def test_resumed_training_continues_the_trajectory(tmp_path) -> None:
    from loss_landscape_anim.integrations.huggingface import STATE_FILE
    from loss_landscape_anim.transformers import LossLandscapeCallback

    straight = LossLandscapeCallback()
    Trainer(
        model=gpt2(),
        args=arguments(tmp_path / "a", 6),
        train_dataset=Sequences(),
        callbacks=[straight],
    ).train()

    saving = dict(save_strategy="steps", save_steps=3)
    first = LossLandscapeCallback()
    Trainer(
        model=gpt2(),
        args=arguments(tmp_path / "b", 3, **saving),
        train_dataset=Sequences(),
        callbacks=[first],
    ).train()
    assert (tmp_path / "b" / "out" / "checkpoint-3" / STATE_FILE.format(every=1)).is_file()
    resumed = LossLandscapeCallback()
    Trainer(
        model=gpt2(seed=1),  # the checkpoint's weights replace these
        args=arguments(tmp_path / "b", 6, **saving),
        train_dataset=Sequences(),
        callbacks=[resumed],
    ).train(resume_from_checkpoint=True)
    got, expected = resumed.trajectory, straight.trajectory
    np.testing.assert_array_equal(got.steps, np.arange(7))
    scale = np.abs(expected.params).max()
    np.testing.assert_allclose(got.params, expected.params, rtol=0, atol=64 * EPS32 * scale)
    np.testing.assert_allclose(got.loss[:6], expected.loss[:6], rtol=64 * EPS32)


def test_the_landscape_at_the_end_is_written_and_logged_to_tensorboard(tmp_path) -> None:
    from loss_landscape_anim.transformers import LossLandscapeCallback

    output = tmp_path / "finetune.gif"
    callback = LossLandscapeCallback(output=output, log=True, resolution=4, n_examples=8)
    trainer = train_reporting(callback, tmp_path, 3, "tensorboard")
    landscape = callback.landscape
    assert landscape.grid.loss.shape == (4, 4) and landscape.grid.n_examples == 8
    with Image.open(output) as gif:
        assert gif.n_frames == len(callback.trajectory) == 4
    [tensorboard] = [
        c for c in trainer.callback_handler.callbacks if type(c).__name__ == "TensorBoardCallback"
    ]
    reader = event_accumulator.EventAccumulator(
        tensorboard.logging_dir, size_guidance={event_accumulator.IMAGES: 0}
    )
    reader.Reload()
    assert "train/loss" in reader.Tags()["scalars"]  # the trainer's own run
    [video] = reader.Images("loss_landscape/animation")
    assert video.step == 3
    with Image.open(io.BytesIO(video.encoded_image_string)) as gif:
        assert gif.n_frames == 4


def test_bad_options_are_refused_when_the_callback_is_made(tmp_path) -> None:
    from loss_landscape_anim.transformers import LossLandscapeCallback

    with pytest.raises(ValueError, match="Expected every to be a positive integer but got 0"):
        LossLandscapeCallback(every=0)
    with pytest.raises(ValueError, match="Expected resolution to be an integer >= 2 but got 1"):
        LossLandscapeCallback(resolution=1)
    with pytest.raises(ValueError, match=r"method to be one of 'pca', 'random', 'filter'"):
        LossLandscapeCallback(method="hessian")
    with pytest.raises(ValueError, match=r"output"):
        LossLandscapeCallback(output=tmp_path / "landscape.bmp")


def test_importing_without_transformers_says_what_to_install(monkeypatch) -> None:
    for name in (
        "loss_landscape_anim.transformers",
        "loss_landscape_anim.integrations.huggingface",
    ):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r'pip install "loss-landscape-anim\[transformers\]"'):
        importlib.import_module("loss_landscape_anim.transformers")


def test_a_saved_trajectory_of_a_trainer_run_loads(tmp_path) -> None:
    from loss_landscape_anim.transformers import LossLandscapeCallback

    callback = LossLandscapeCallback(every=2)
    Trainer(
        model=gpt2(), args=arguments(tmp_path, 5), train_dataset=Sequences(), callbacks=[callback]
    ).train()
    trajectory = callback.trajectory
    np.testing.assert_array_equal(trajectory.steps, [0, 2, 4, 5])
    loaded = Trajectory.load(trajectory.save(tmp_path / "run.npz"))
    np.testing.assert_array_equal(loaded.params, trajectory.params)


def test_log_true_logs_to_the_trainers_wandb_run(tmp_path, monkeypatch) -> None:
    wandb = pytest.importorskip("wandb")
    from loss_landscape_anim.transformers import LossLandscapeCallback

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    callback = LossLandscapeCallback(log=True, resolution=3, n_examples=8)
    train_reporting(callback, tmp_path, 2, "wandb")
    run = wandb.run
    assert run is not None
    videos = sorted((Path(run.dir) / "media" / "videos" / "loss_landscape").glob("animation_*"))
    assert [v.read_bytes() for v in videos] == [callback.landscape.animation.read_bytes()]
    run.finish()
    wandb.teardown()
