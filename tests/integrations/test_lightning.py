"""``LossLandscapeCallback`` in a real (tiny, CPU) ``Trainer.fit``: rows against a plain loop, each
row's loss the loss of its own weights, thinning, state saved in and restored from Lightning
checkpoints, rank zero only, the ``pytorch_lightning`` fallback and the install hint."""

from __future__ import annotations

import copy
import importlib
import math
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parameters_to_vector
from torch.utils.data import DataLoader, TensorDataset

from oracle import spirals

# Lightning's own warnings, narrowly: a tiny CPU run with no workers, and Lightning's use of an API
# that newer torch deprecates.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:.*isinstance.treespec, LeafSpec.* is deprecated:FutureWarning"
    ),
    pytest.mark.filterwarnings("ignore:.*does not have many workers:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*is smaller than the logging interval:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*GPU available but not used:UserWarning"),
]

N_EXAMPLES, BATCH = 64, 16  # 4 steps per epoch


def make_module(framework: str = "lightning"):
    """A LightningModule of ``framework`` that also notes the loss of every batch it trains on."""
    base = importlib.import_module(
        "lightning.pytorch" if framework == "lightning" else "pytorch_lightning"
    ).LightningModule

    class Tiny(base):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 3))
            self.seen: list[tuple[int, float]] = []

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            out = self(x)
            loss = F.cross_entropy(out, y)
            self.seen.append((self.trainer.global_step, loss.item()))
            return {"loss": loss, "accuracy": (out.argmax(1) == y).float().mean()}

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

        def train_dataloader(self):
            X, y = spirals()
            pick = torch.arange(0, len(X), len(X) // N_EXAMPLES)[:N_EXAMPLES]
            return DataLoader(TensorDataset(X[pick], y[pick]), batch_size=BATCH)

    return Tiny()


def fit(module, callbacks, tmp_path, framework="lightning", epochs=2, ckpt_path=None, **options):
    trainer_class = importlib.import_module(
        "lightning.pytorch" if framework == "lightning" else "pytorch_lightning"
    ).Trainer
    settings = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": tmp_path,
        **options,
    }
    trainer = trainer_class(max_epochs=epochs, callbacks=callbacks, **settings)
    trainer.fit(module, ckpt_path=ckpt_path)
    return trainer


def plain_loop_rows(module) -> np.ndarray:
    """Oracle: the weights of the same training written as a plain loop (initial, then per step)."""
    net = copy.deepcopy(module.net)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    rows = [parameters_to_vector(net.parameters()).detach().numpy().copy()]
    for _ in range(2):
        for x, y in module.train_dataloader():
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rows.append(parameters_to_vector(net.parameters()).detach().numpy().copy())
    return np.stack(rows)


def test_rows_and_losses_follow_the_row_rules(tmp_path) -> None:
    from loss_landscape_anim.lightning import LossLandscapeCallback

    module = make_module()
    expected = plain_loop_rows(module)
    callback = LossLandscapeCallback()
    fit(module, [callback], tmp_path)
    trajectory = callback.trajectory

    np.testing.assert_array_equal(trajectory.steps, np.arange(9))
    np.testing.assert_allclose(trajectory.params, expected, rtol=1e-6, atol=1e-7)
    seen = dict(module.seen)  # global step -> loss of the batch trained on those weights
    np.testing.assert_allclose(trajectory.loss[:8], [seen[s] for s in range(8)], rtol=1e-6)
    assert math.isnan(trajectory.loss[8])  # the final weights: no batch measured them
    assert np.all((trajectory.accuracy[:8] >= 0) & (trajectory.accuracy[:8] <= 1))
    assert (trajectory.optimizer, trajectory.learning_rate) == ("sgd", 0.5)
    assert trajectory.params.dtype == np.float32


def test_every_n_steps_keeps_the_due_steps_and_the_final_weights(tmp_path) -> None:
    from loss_landscape_anim.lightning import LossLandscapeCallback

    module = make_module()
    expected = plain_loop_rows(module)
    callback = LossLandscapeCallback(every_n_steps=3)
    fit(module, [callback], tmp_path)
    trajectory = callback.trajectory
    np.testing.assert_array_equal(trajectory.steps, [0, 3, 6, 8])
    np.testing.assert_allclose(trajectory.params, expected[[0, 3, 6, 8]], rtol=1e-6, atol=1e-7)
    seen = dict(module.seen)
    np.testing.assert_allclose(trajectory.loss[:3], [seen[0], seen[3], seen[6]], rtol=1e-6)


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty:UserWarning")
def test_state_is_saved_in_and_restored_from_lightning_checkpoints(tmp_path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from loss_landscape_anim.lightning import LossLandscapeCallback

    whole = LossLandscapeCallback()
    fit(make_module(), [whole], tmp_path)

    first = LossLandscapeCallback()
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="half")
    fit(make_module(), [first, saver], tmp_path, epochs=1, enable_checkpointing=True)
    path = tmp_path / "ckpt" / "half.ckpt"
    saved = torch.load(path, map_location="cpu", weights_only=True)["callbacks"]
    (state,) = (v for k, v in saved.items() if k.startswith("LossLandscapeCallback"))
    assert state["recording"]["rows"].shape == (5, 39)
    assert state["recording"]["steps"] == [0, 1, 2, 3, 4]

    resumed = LossLandscapeCallback()  # a new process would start from here
    again = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="full")
    fit(make_module(), [resumed, again], tmp_path, ckpt_path=path, enable_checkpointing=True)
    a, b = whole.trajectory, resumed.trajectory
    np.testing.assert_array_equal(b.steps, a.steps)
    np.testing.assert_allclose(b.params, a.params, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-6)  # row 4's loss measured after resuming
    assert math.isnan(b.loss[-1]) and not math.isnan(b.loss[4])


def test_only_global_zero_records() -> None:
    from loss_landscape_anim.lightning import LossLandscapeCallback

    callback = LossLandscapeCallback()
    trainer = SimpleNamespace(is_global_zero=False, global_step=0, optimizers=[])
    callback.on_train_start(trainer, make_module())
    callback.on_train_batch_start(trainer, None, None, 0)
    callback.on_train_batch_end(trainer, None, torch.tensor(1.0), None, 0)
    callback.on_train_end(trainer, None)
    assert callback.trajectory is None
    assert callback.state_dict() == {"every_n_steps": 1}


def test_bad_settings_are_refused() -> None:
    from loss_landscape_anim.lightning import LossLandscapeCallback

    with pytest.raises(
        ValueError, match="Expected every_n_steps to be a positive integer but got 0"
    ):
        LossLandscapeCallback(every_n_steps=0)
    callback = LossLandscapeCallback(every_n_steps=2)
    with pytest.raises(ValueError, match="recorded every 1 steps but this one records every 2"):
        callback.load_state_dict({"every_n_steps": 1})


def _forget_our_lightning_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("loss_landscape_anim.lightning", "loss_landscape_anim.integrations.lightning"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_importing_without_lightning_says_what_to_install(monkeypatch) -> None:
    _forget_our_lightning_modules(monkeypatch)
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        monkeypatch.setitem(sys.modules, name, None)  # an import of these now fails
    with pytest.raises(ImportError, match=r'pip install "loss-landscape-anim\[lightning\]"'):
        importlib.import_module("loss_landscape_anim.lightning")


def test_pytorch_lightning_is_used_where_lightning_is_not_installed(tmp_path, monkeypatch) -> None:
    _forget_our_lightning_modules(monkeypatch)
    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    ours = importlib.import_module("loss_landscape_anim.lightning")
    assert importlib.import_module("loss_landscape_anim.integrations.lightning").FRAMEWORK == (
        "pytorch_lightning"
    )
    module = make_module("pytorch_lightning")
    callback = ours.LossLandscapeCallback(every_n_steps=2)
    fit(module, [callback], tmp_path, framework="pytorch_lightning")
    np.testing.assert_array_equal(callback.trajectory.steps, [0, 2, 4, 6, 8])
    seen = dict(module.seen)
    np.testing.assert_allclose(
        callback.trajectory.loss[:4], [seen[s] for s in (0, 2, 4, 6)], rtol=1e-6
    )


def batches(module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(module.train_dataloader())


def loss_at(module, row: np.ndarray, batch) -> float:
    """Oracle: the cross-entropy of the flat weights ``row`` on ``batch``."""
    net = copy.deepcopy(module.net)
    torch.nn.utils.vector_to_parameters(torch.from_numpy(np.array(row)), net.parameters())
    with torch.no_grad():
        return F.cross_entropy(net(batch[0]), batch[1]).item()


def test_gradient_accumulation_records_the_losses_training_step_returned(tmp_path) -> None:
    """Lightning hands on_train_batch_end the loss divided by accumulate_grad_batches."""
    from loss_landscape_anim.lightning import LossLandscapeCallback

    module = make_module()
    callback = LossLandscapeCallback()
    fit(module, [callback], tmp_path, accumulate_grad_batches=2)
    trajectory = callback.trajectory
    assert trajectory.steps.tolist() == [0, 1, 2, 3, 4]  # 2 epochs of 2 accumulated steps
    seen = np.array(module.seen)
    expected = [seen[seen[:, 0] == s, 1].mean() for s in range(4)]  # both micro-batches
    np.testing.assert_allclose(trajectory.loss[:4], expected, rtol=1e-6)
    data = batches(module)
    own = [
        np.mean([loss_at(module, trajectory.params[t], b) for b in data[2 * (t % 2) :][:2]])
        for t in range(4)
    ]
    np.testing.assert_allclose(trajectory.loss[:4], own, rtol=1e-5)


def test_lbfgs_rows_keep_the_loss_of_their_own_weights(tmp_path) -> None:
    """LBFGS evaluates the closure on trial weights after its first call; Lightning hands the
    callback the last call's outputs."""
    from loss_landscape_anim.lightning import LossLandscapeCallback

    module = make_module()
    module.configure_optimizers = lambda: torch.optim.LBFGS(module.parameters(), lr=0.5, max_iter=4)
    callback = LossLandscapeCallback()
    fit(module, [callback], tmp_path, epochs=1)
    trajectory = callback.trajectory
    assert trajectory.steps.tolist() == [0, 1, 2, 3, 4]
    assert len(module.seen) > 4  # several evaluations per step
    first = {}
    for step, loss in module.seen:
        first.setdefault(step, loss)
    np.testing.assert_allclose(trajectory.loss[:4], [first[s] for s in range(4)], rtol=1e-6)
    data = batches(module)
    own = [loss_at(module, trajectory.params[t], data[t]) for t in range(4)]
    np.testing.assert_allclose(trajectory.loss[:4], own, rtol=1e-5)
    assert np.isnan(trajectory.accuracy[:4]).all()  # only the last evaluation's is handed over
    assert trajectory.optimizer == "lbfgs"


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty:UserWarning")
def test_two_callbacks_in_one_trainer_record_and_checkpoint_apart(tmp_path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from loss_landscape_anim.lightning import LossLandscapeCallback

    every, thinned = LossLandscapeCallback(), LossLandscapeCallback(every_n_steps=3)
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="both")
    fit(make_module(), [every, thinned, saver], tmp_path, enable_checkpointing=True)
    assert every.trajectory.steps.tolist() == list(range(9))
    assert thinned.trajectory.steps.tolist() == [0, 3, 6, 8]
    np.testing.assert_array_equal(thinned.trajectory.params, every.trajectory.params[[0, 3, 6, 8]])
    saved = torch.load(tmp_path / "ckpt" / "both.ckpt", map_location="cpu", weights_only=True)
    states = {k: v for k, v in saved["callbacks"].items() if k.startswith("LossLandscapeCallback")}
    assert sorted(s["every_n_steps"] for s in states.values()) == [1, 3]
    # saved at the end of the last epoch, before the final row of the thinned one
    assert sorted(len(s["recording"]["steps"]) for s in states.values()) == [3, 9]


def test_a_lazy_module_is_recorded_from_its_first_batch(tmp_path) -> None:
    from loss_landscape_anim.lightning import LossLandscapeCallback

    module = make_module()
    torch.manual_seed(1)
    module.net[0] = nn.LazyLinear(6)
    measured = {}  # global step -> the weights training_step measured (oracle)
    step = module.training_step

    def training_step(batch, batch_idx):
        out = step(batch, batch_idx)
        measured.setdefault(
            module.trainer.global_step,
            parameters_to_vector(module.net.parameters()).detach().numpy().copy(),
        )
        return out

    module.training_step = training_step
    callback = LossLandscapeCallback()
    fit(module, [callback], tmp_path, epochs=1)
    trajectory = callback.trajectory
    assert trajectory.steps.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(trajectory.params[:4], np.stack([measured[s] for s in range(4)]))
    np.testing.assert_array_equal(
        trajectory.params[4], parameters_to_vector(module.net.parameters()).detach().numpy()
    )
    seen = dict(module.seen)
    np.testing.assert_allclose(trajectory.loss[:4], [seen[s] for s in range(4)], rtol=1e-6)


@pytest.mark.filterwarnings(
    "ignore:.*returned `None`, this fit will run with no optimizer:UserWarning"
)
def test_without_an_optimizer_the_trajectory_names_none(tmp_path) -> None:
    from loss_landscape_anim.lightning import LossLandscapeCallback

    module = make_module()
    module.configure_optimizers = lambda: None
    callback = LossLandscapeCallback()
    fit(module, [callback], tmp_path, epochs=1)
    trajectory = callback.trajectory
    assert trajectory.optimizer == ""
    assert math.isnan(trajectory.learning_rate)


def test_a_bad_spill_dir_is_refused_when_the_callback_is_made(tmp_path) -> None:
    from loss_landscape_anim.lightning import LossLandscapeCallback

    with pytest.raises(
        ValueError, match=r"Expected spill_dir to be an existing folder but .* does not exist"
    ):
        LossLandscapeCallback(spill_dir=tmp_path / "missing")


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty:UserWarning")
@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`:UserWarning")
def test_a_checkpoint_whose_state_key_is_the_class_name_alone_is_resumed(tmp_path) -> None:
    """Checkpoints written before the key named every_n_steps keep their rows."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from loss_landscape_anim.lightning import LossLandscapeCallback

    whole = LossLandscapeCallback(every_n_steps=2)
    fit(make_module(), [whole], tmp_path)
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="half")
    fit(
        make_module(),
        [LossLandscapeCallback(every_n_steps=2), saver],
        tmp_path,
        epochs=1,
        enable_checkpointing=True,
    )
    path = tmp_path / "ckpt" / "half.ckpt"
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    (key,) = [k for k in checkpoint["callbacks"] if str(k).startswith("LossLandscapeCallback")]
    assert key == "LossLandscapeCallback{'every_n_steps': 2}"
    checkpoint["callbacks"]["LossLandscapeCallback"] = checkpoint["callbacks"].pop(key)
    torch.save(checkpoint, path)

    resumed = LossLandscapeCallback(every_n_steps=2)
    fit(make_module(), [resumed], tmp_path, ckpt_path=path)
    np.testing.assert_array_equal(resumed.trajectory.steps, whole.trajectory.steps)
    np.testing.assert_allclose(
        resumed.trajectory.params, whole.trajectory.params, rtol=1e-6, atol=1e-7
    )
