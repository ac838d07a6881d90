"""Tests of ``train``: what is recorded, against a hand-written training loop and a recomputation
of each row's loss; seeding; thinning; divergence; the accepted forms of data; errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from torch.utils.data import DataLoader, TensorDataset

import loss_landscape_anim.record.training as training
from loss_landscape_anim.data import SpiralsDataModule
from loss_landscape_anim.errors import DataError, DivergenceWarning
from loss_landscape_anim.models import MLP
from loss_landscape_anim.record import train


def spirals() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = SpiralsDataModule().dataset.tensors
    return X, y


def small_mlp(seed: int = 0, hidden_dim: int = 8, **options) -> MLP:
    torch.manual_seed(seed)
    return MLP(2, 3, hidden_dim=hidden_dim, **options)


def flat(model: nn.Module) -> np.ndarray:
    return parameters_to_vector(model.parameters()).detach().numpy()


def full_batch_loss(model: nn.Module, row: np.ndarray, X: torch.Tensor, y: torch.Tensor):
    """Oracle: the row's weights loaded into a copy of the model, evaluated on all the data."""
    copy_ = copy.deepcopy(model)
    vector_to_parameters(torch.from_numpy(np.array(row)), copy_.parameters())
    with torch.no_grad():
        out = copy_(X)
    return float(F.cross_entropy(out, y)), float((out.argmax(1) == y).float().mean())


def test_rows_match_a_hand_written_loop() -> None:
    X, y = spirals()
    model = small_mlp(learning_rate=0.05)
    trajectory = train(model, (X, y), 4, progress=False)

    reference = copy.deepcopy(model)
    opt = torch.optim.Adam(reference.parameters(), lr=0.05)
    expected = [flat(reference)]
    for _ in range(4):
        loss = F.cross_entropy(reference(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        expected.append(flat(reference))

    assert trajectory.params.shape == (5, 51)
    np.testing.assert_array_equal(trajectory.params[0], flat(model))  # initial weights
    np.testing.assert_allclose(trajectory.params, np.stack(expected), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(trajectory.steps, np.arange(5))
    assert trajectory.optimizer == "adam"
    assert trajectory.learning_rate == 0.05
    assert not trajectory.diverged


def test_each_row_loss_is_the_loss_of_its_weights() -> None:
    X, y = spirals()
    model = small_mlp()
    trajectory = train(
        model, SpiralsDataModule(), 3, optimizer="sgd", learning_rate=0.5, progress=False
    )
    for t in range(len(trajectory)):
        loss, accuracy = full_batch_loss(model, trajectory.params[t], X, y)
        assert trajectory.loss[t] == pytest.approx(loss, rel=1e-6)
        assert trajectory.accuracy[t] == pytest.approx(accuracy, abs=1e-9)
    assert trajectory.loss[-1] < trajectory.loss[0]


def test_the_callers_model_is_not_changed() -> None:
    model = small_mlp()
    model.eval()
    model.layers[0].weight.requires_grad_(False)
    before = copy.deepcopy(model.state_dict())
    trajectory = train(model, spirals(), 3, learning_rate=0.1, progress=False)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training
    assert not model.layers[0].weight.requires_grad
    assert all(p.grad is None for p in model.parameters())
    assert not np.array_equal(trajectory.params[-1], trajectory.params[0])


def test_same_seed_same_trajectory_and_seeds_differ() -> None:
    model = small_mlp()
    data = SpiralsDataModule(batch_size=128)  # shuffled mini-batches
    torch.manual_seed(123)  # the global state before the call does not matter
    a = train(model, data, 2, seed=0, progress=False)
    torch.manual_seed(456)
    b = train(model, data, 2, seed=0, progress=False)
    c = train(model, data, 2, seed=1, progress=False)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.params[0], c.params[0])
    assert not np.array_equal(a.params[1:], c.params[1:])
    assert len(a) == 2 * 9 + 1


def test_global_rng_state_is_unchanged() -> None:
    X, y = spirals()
    loader = DataLoader(TensorDataset(X, y), batch_size=256, shuffle=True)
    model = small_mlp()
    state = torch.get_rng_state()
    train(model, loader, 2, seed=0, progress=False)
    assert torch.equal(torch.get_rng_state(), state)


def test_record_every_thins_and_keeps_the_final_row() -> None:
    model = small_mlp()
    every_step = train(model, spirals(), 7, learning_rate=0.05, progress=False)
    thinned = train(model, spirals(), 7, learning_rate=0.05, record_every=3, progress=False)
    np.testing.assert_array_equal(thinned.steps, [0, 3, 6, 7])
    np.testing.assert_array_equal(thinned.params, every_step.params[[0, 3, 6, 7]])
    np.testing.assert_array_equal(thinned.loss, every_step.loss[[0, 3, 6, 7]])


def test_long_runs_are_thinned_to_about_max_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "DEFAULT_MAX_RECORDS", 4)
    trajectory = train(small_mlp(), spirals(), 10, progress=False)
    np.testing.assert_array_equal(trajectory.steps, [0, 3, 6, 9, 10])


def test_spilling_to_disk_gives_the_same_trajectory() -> None:
    model = small_mlp()
    in_memory = train(model, spirals(), 3, progress=False)
    spilled = train(model, spirals(), 3, progress=False, memory_limit=2 * 51 * 4)
    assert isinstance(spilled.params, np.memmap)
    np.testing.assert_array_equal(spilled.params, in_memory.params)


def test_model_declares_its_optimizer() -> None:
    trajectory = train(small_mlp(optimizer="sgd", learning_rate=0.25), spirals(), 1, progress=False)
    assert (trajectory.optimizer, trajectory.learning_rate) == ("sgd", 0.25)
    plain = train(nn.Linear(2, 3), spirals(), 1, progress=False)
    assert (plain.optimizer, plain.learning_rate) == ("adam", 1e-3)


def test_labels_out_of_range() -> None:
    X, y = spirals()
    with pytest.raises(
        DataError,
        match=r"Expected labels in \[0, 2\] for a model with 3 outputs but got labels in \[0, 3\]",
    ):
        train(small_mlp(), (X, y + y.eq(2).long()), 1, progress=False)
    with pytest.raises(DataError, match=r"got labels in \[-1, 1\]"):
        train(small_mlp(), (X, y - 1), 1, progress=False)


@pytest.mark.parametrize("n_epochs", [0, -2, 1.5, True, "3"])
def test_bad_n_epochs(n_epochs) -> None:
    with pytest.raises(
        ValueError, match=f"Expected n_epochs to be a positive integer but got {n_epochs!r}"
    ):
        train(small_mlp(), spirals(), n_epochs, progress=False)


def test_bad_optimizer_lists_the_accepted_names() -> None:
    with pytest.raises(
        ValueError,
        match=r"Expected optimizer to be one of 'adam', 'sgd', 'adagrad', 'rmsprop', a "
        r"torch.optim.Optimizer class or a factory but got 'adamw'",
    ):
        train(small_mlp(), spirals(), 1, optimizer="adamw", progress=False)
    with pytest.raises(TypeError, match=r"optimizer name, .* but got int"):
        train(small_mlp(), spirals(), 1, optimizer=3, progress=False)


def test_bad_learning_rate_and_model() -> None:
    with pytest.raises(
        ValueError, match="Expected learning_rate to be a finite number > 0 but got 0"
    ):
        train(small_mlp(), spirals(), 1, learning_rate=0, progress=False)
    with pytest.raises(TypeError, match=r"Expected model to be a torch.nn.Module but got str"):
        train("mlp", spirals(), 1, progress=False)


def test_divergence_warns_and_keeps_finite_rows() -> None:
    with pytest.warns(DivergenceWarning, match="diverged to non-finite values at step"):
        trajectory = train(
            small_mlp(hidden_dim=50),
            spirals(),
            20,
            optimizer="sgd",
            learning_rate=1e12,
            progress=False,
        )
    assert trajectory.diverged
    assert 1 <= len(trajectory) < 21
    assert np.isfinite(trajectory.params).all()
    assert np.isfinite(trajectory.loss).all()


def test_non_finite_initial_weights() -> None:
    model = small_mlp()
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("inf")
    with (
        pytest.warns(DivergenceWarning),
        pytest.raises(DataError, match="not finite at the initial weights"),
    ):
        train(model, spirals(), 2, progress=False)


def test_empty_data() -> None:
    with pytest.raises(DataError, match="at least one batch"):
        train(small_mlp(), (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)), 1, progress=False)


class HasTrainDataloader:
    def __init__(self, X: torch.Tensor, y: torch.Tensor):
        self.X, self.y = X, y

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.X, self.y), batch_size=len(self.X))


def test_accepts_every_form_of_data() -> None:
    X, y = spirals()
    model = small_mlp()
    forms = {
        "pair": (X, y),
        "numpy pair": (X.double().numpy(), y.numpy()),
        "dataset": TensorDataset(X, y),
        "loader": DataLoader(TensorDataset(X, y), batch_size=len(X)),
        "module": HasTrainDataloader(X, y),
        "spirals": SpiralsDataModule(),
    }
    runs = {name: train(model, data, 2, progress=False) for name, data in forms.items()}
    for name, run in runs.items():
        assert len(run) == 3, name
        np.testing.assert_allclose(run.params, runs["pair"].params, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(run.loss, runs["pair"].loss, rtol=1e-6, err_msg=name)


def test_batch_size_applies_to_a_pair() -> None:
    trajectory = train(small_mlp(), spirals(), 1, batch_size=500, seed=0, progress=False)
    assert len(trajectory) == 3 + 1  # 1083 examples in batches of 500: 3 steps, plus the final row


def test_final_buffers_are_recorded_saved_and_restored(tmp_path) -> None:
    from loss_landscape_anim.results import Trajectory

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    )
    X, y = torch.randn(64, 2), torch.randint(0, 3, (64,))
    trajectory = train(model, (X, y), 5, seed=0, progress=False)
    assert int(trajectory.buffers["1.num_batches_tracked"]) == 5
    assert not np.allclose(trajectory.buffers["1.running_mean"], 0.0)
    assert int(model[1].num_batches_tracked) == 0  # the caller's model is untouched
    loaded = Trajectory.load(trajectory.save(tmp_path / "t.npz"))
    trained = loaded.apply_to(copy.deepcopy(model))
    np.testing.assert_array_equal(
        trained[1].running_mean.numpy(), trajectory.buffers["1.running_mean"]
    )
    np.testing.assert_array_equal(
        torch.nn.utils.parameters_to_vector(trained.parameters()).detach().numpy(),
        trajectory.params[-1],
    )


# -- what a hard user tries ------------------------------------------------------------------------


def test_non_finite_inputs_are_named_before_training(monkeypatch) -> None:
    def no_step(*args, **kwargs):
        raise AssertionError("trained on non-finite data")

    monkeypatch.setattr(training, "_run", no_step)
    X, y = spirals()
    X = X.clone()
    X[140, 1] = float("nan")
    X[600, 0] = float("inf")
    with pytest.raises(
        DataError,
        match=r"The inputs hold 2 non-finite values \(NaN or infinity\); the first is in example 140",
    ):
        train(small_mlp(), (X, y), 2, progress=False)
    loader = DataLoader(TensorDataset(X, y), batch_size=32)
    with pytest.raises(DataError, match="the first is in example 140"):
        train(small_mlp(), loader, 2, progress=False)


def test_non_finite_float_targets_are_named() -> None:
    X = torch.randn(20, 2)
    y = torch.randn(20, 1)
    y[7, 0] = float("nan")
    model = nn.Sequential(nn.Linear(2, 1))
    model.loss_fn = F.mse_loss
    with pytest.raises(DataError, match=r"The targets hold 1 non-finite value .* example 7"):
        train(model, (X, y), 1, progress=False)


class ListDataset(torch.utils.data.Dataset):
    """A dataset seen only by iterating: its tensors are not exposed."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor):
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int):
        return self.X[i], self.y[i]


def test_non_finite_data_seen_by_iterating_name_the_batch() -> None:
    X, y = spirals()
    X = X.clone()
    X[140, 0] = float("nan")
    loader = DataLoader(ListDataset(X, y), batch_size=32)
    with pytest.raises(
        DataError,
        match="the first is in row 12 of training batch 4 of the first epoch",
    ):
        train(small_mlp(), loader, 2, progress=False)


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8, torch.int16])
def test_integer_labels_of_any_dtype_train(dtype) -> None:
    X, y = spirals()
    reference = train(small_mlp(), (X, y), 2, progress=False)
    narrow = train(small_mlp(), (X, y.to(dtype)), 2, progress=False)
    np.testing.assert_array_equal(narrow.params, reference.params)
    np.testing.assert_array_equal(narrow.accuracy, reference.accuracy)


def test_numpy_integers_are_accepted() -> None:
    trajectory = train(
        small_mlp(), spirals(), np.int64(2), record_every=np.int32(1), progress=False
    )
    assert len(trajectory) == 3
    with pytest.raises(ValueError, match="Expected n_epochs to be a positive integer but got True"):
        train(small_mlp(), spirals(), True, progress=False)


def test_a_model_without_trainable_parameters_is_named() -> None:
    model = small_mlp()
    model.requires_grad_(False)
    with pytest.raises(
        ValueError, match="every parameter of MLP has requires_grad=False: unfreeze"
    ):
        train(model, spirals(), 1, progress=False)


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 3)

    def forward(self, x):
        return self.linear(x), x


class Named(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 3)

    def forward(self, x):
        return {"scores": self.linear(x)}


def test_a_model_returning_a_tuple_is_measured_by_its_first_item() -> None:
    torch.manual_seed(0)
    pair = Pair()
    alone = nn.Sequential(copy.deepcopy(pair.linear))
    got = train(pair, spirals(), 3, seed=0, progress=False)
    expected = train(alone, spirals(), 3, seed=0, progress=False)
    np.testing.assert_array_equal(got.params, expected.params)
    np.testing.assert_array_equal(got.loss, expected.loss)


def test_a_model_returning_no_predictions_is_named() -> None:
    with pytest.raises(
        TypeError, match=r"its predictions .* returned a dict with keys \['scores'\]"
    ):
        train(Named(), spirals(), 1, progress=False)


def test_a_meta_device_model_is_named() -> None:
    with torch.device("meta"):
        model = nn.Linear(2, 3)
    with pytest.raises(ValueError, match=r"'meta' device .* model\.to_empty"):
        train(model, spirals(), 1, progress=False)


@pytest.mark.parametrize("seed", [2**70, -(2**63) - 1, 1.5])
def test_seeds_outside_torch_range_are_refused(seed) -> None:
    with pytest.raises(ValueError, match=r"Expected seed to be None or an integer from -2\*\*63"):
        train(small_mlp(), spirals(), 1, seed=seed, progress=False)


def test_lbfgs_steps_with_its_closure() -> None:
    X, y = spirals()
    model = small_mlp()
    trajectory = train(
        model, (X, y), 3, optimizer=torch.optim.LBFGS, learning_rate=0.5, progress=False
    )
    assert trajectory.optimizer == "lbfgs"
    assert len(trajectory) == 4 and trajectory.loss[-1] < trajectory.loss[0]
    # row t + 1 is what LBFGS makes of row t's weights
    reference = copy.deepcopy(model)
    opt = torch.optim.LBFGS(reference.parameters(), lr=0.5)
    for row in trajectory.params[1:]:

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(reference(X), y)
            loss.backward()
            return loss

        opt.step(closure)
        np.testing.assert_allclose(flat(reference), row, rtol=1e-5, atol=1e-6)
    for row, loss in zip(trajectory.params, trajectory.loss, strict=True):
        assert full_batch_loss(model, row, X, y)[0] == pytest.approx(loss, rel=1e-5)


def test_a_numpy_learning_rate_declared_by_a_plain_module_is_used() -> None:
    model = nn.Sequential(nn.Linear(2, 3))
    model.learning_rate = np.float32(0.5)
    trajectory = train(model, spirals(), 1, progress=False)
    assert trajectory.learning_rate == 0.5
