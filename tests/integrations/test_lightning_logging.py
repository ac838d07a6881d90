"""``LossLandscapeCallback.log_landscape``: a landscape computed after ``Trainer.fit`` goes to the
trainer's own TensorBoardLogger and WandbLogger (read back from their files), at the trainer's last
step; other loggers are skipped with a warning."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from loss_landscape_anim import Style, animate, compute_loss_grid, project
from oracle import RTOL, spirals

lightning = pytest.importorskip("lightning")
pytest.importorskip("tensorboard")
wandb = pytest.importorskip("wandb")
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger  # noqa: E402
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:.*isinstance.treespec, LeafSpec.* is deprecated:FutureWarning"
    ),
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*is smaller than the logging interval:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*GPU available but not used:UserWarning"),
]


class Tiny(lightning.pytorch.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 3))
        X, y = spirals()
        self.data = (X[::8], y[::8])

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)

    def train_dataloader(self):
        return DataLoader(TensorDataset(*self.data), batch_size=len(self.data[0]) // 3)


def fit(module, callback, loggers, tmp_path):
    """``Trainer.fit`` of ``module`` for 2 epochs on the CPU with ``callback`` and ``loggers``."""
    trainer = lightning.pytorch.Trainer(
        max_epochs=2,
        callbacks=[callback],
        logger=loggers,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        default_root_dir=tmp_path,
        log_every_n_steps=1,
    )
    trainer.fit(module)
    return trainer


def fit_with(loggers, tmp_path, monkeypatch):
    from loss_landscape_anim.lightning import LossLandscapeCallback

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    module, callback = Tiny(), LossLandscapeCallback()
    trainer = fit(module, callback, loggers, tmp_path)
    trajectory = callback.trajectory
    plane = project(trajectory, "pca")
    grid = compute_loss_grid(module, module.data, plane, resolution=6, progress=False)
    style = Style(figsize=(3.0, 2.5), dpi=50, panels=False)
    animation = animate(trajectory, plane, grid, None, format="gif", style=style, progress=False)
    return trainer, callback, {"animation": animation, "grid": grid, "plane": plane}


def test_logs_to_the_trainers_tensorboard_and_wandb(tmp_path, monkeypatch):
    tensorboard = TensorBoardLogger(save_dir=str(tmp_path), name="tb")
    wandb_logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="landscape")
    trainer, callback, results = fit_with([tensorboard, wandb_logger], tmp_path, monkeypatch)
    written = callback.log_landscape(**results)
    run = wandb_logger.experiment
    assert written == [
        "tensorboard:loss_landscape/animation",
        "tensorboard:loss_landscape/landscape",
        "tensorboard:loss_landscape/surface",
        "wandb:loss_landscape/animation",
        "wandb:loss_landscape/landscape",
        "wandb:loss_landscape/surface",
    ]
    tensorboard.experiment.flush()
    reader = event_accumulator.EventAccumulator(
        tensorboard.log_dir, size_guidance={event_accumulator.IMAGES: 0}
    )
    reader.Reload()
    [video] = reader.Images("loss_landscape/animation")
    assert video.step == trainer.global_step > 0
    with Image.open(io.BytesIO(video.encoded_image_string)) as gif:
        assert gif.n_frames == results["animation"].n_frames
    from pathlib import Path

    videos = sorted((Path(run.dir) / "media" / "videos" / "loss_landscape").glob("animation_*"))
    assert [v.read_bytes() for v in videos] == [results["animation"].read_bytes()]
    run.finish()
    wandb.teardown()  # the next wandb.init sets up afresh (its folder, its mode)


def test_other_loggers_are_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    _, callback, results = fit_with([CSVLogger(save_dir=str(tmp_path))], tmp_path, monkeypatch)
    with caplog.at_level(logging.WARNING):
        assert callback.log_landscape(grid=results["grid"]) == []
    assert "Skipped the trainer's CSVLogger" in caplog.text


def test_before_fit_it_says_when_to_call_it():
    from loss_landscape_anim.lightning import LossLandscapeCallback

    with pytest.raises(RuntimeError, match=r"call it after Trainer\.fit"):
        LossLandscapeCallback().log_landscape(grid=None)


def test_log_true_makes_and_logs_the_landscape_when_fit_ends(tmp_path, monkeypatch):
    from loss_landscape_anim.lightning import LossLandscapeCallback

    output = tmp_path / "fit.gif"
    callback = LossLandscapeCallback(output=output, log=True, resolution=5)
    tensorboard = TensorBoardLogger(save_dir=str(tmp_path), name="tb")
    module = Tiny()
    trainer = fit(module, callback, [tensorboard], tmp_path)
    landscape = callback.landscape
    # the grid is the module's loss on its own training data (the trainer's loader)
    X, y = module.data
    expected = compute_loss_grid(module, (X, y), landscape.plane, resolution=5, progress=False)
    np.testing.assert_allclose(landscape.grid.loss, expected.loss, rtol=RTOL)
    assert landscape.grid.n_examples == len(X)
    with Image.open(output) as gif:
        assert gif.n_frames == len(callback.trajectory) == trainer.global_step + 1
    tensorboard.experiment.flush()
    reader = event_accumulator.EventAccumulator(
        tensorboard.log_dir, size_guidance={event_accumulator.IMAGES: 0}
    )
    reader.Reload()
    [video] = reader.Images("loss_landscape/animation")
    assert video.step == trainer.global_step
    assert set(reader.Tags()["images"]) >= {"loss_landscape/animation", "loss_landscape/landscape"}
