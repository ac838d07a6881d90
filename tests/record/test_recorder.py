"""Tests of the public ``TrajectoryRecorder`` (the row rules), of how ``train`` builds its optimizer,
and of the opt-in thread policy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parameters_to_vector

from loss_landscape_anim import MLP, GenericModel, SpiralsDataModule, TrajectoryRecorder, train


def tiny(dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 2)).to(dtype)


def test_rows_hold_the_weights_of_their_step_with_the_loss_measured_on_them() -> None:
    model = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = TrajectoryRecorder(model, every=2, optimizer="sgd", learning_rate=0.1)
    X, y = torch.randn(16, 2), torch.randint(0, 2, (16,))
    expected_rows, expected_losses = [], []
    for step in range(5):
        loss = F.cross_entropy(model(X), y)
        if recorder.due(step):
            assert recorder.record(step, loss.item())
            expected_rows.append(parameters_to_vector(model.parameters()).detach().clone())
            expected_losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert recorder.record(5)  # the final weights, measured by nothing: NaN
    trajectory = recorder.trajectory()
    assert trajectory.steps.tolist() == [0, 2, 4, 5]
    np.testing.assert_array_equal(trajectory.params[:3], torch.stack(expected_rows).numpy())
    np.testing.assert_array_equal(
        trajectory.params[3], parameters_to_vector(model.parameters()).detach().numpy()
    )
    np.testing.assert_array_equal(trajectory.loss[:3], expected_losses)
    assert math.isnan(trajectory.loss[3]) and np.isnan(trajectory.accuracy).all()
    assert (trajectory.optimizer, trajectory.learning_rate) == ("sgd", 0.1)
    # the model's buffers as they are at the end (BatchNorm ran 5 training batches)
    np.testing.assert_array_equal(
        trajectory.buffers["1.running_mean"], model[1].running_mean.numpy()
    )


def test_a_float64_model_is_recorded_in_float64() -> None:
    model = tiny(torch.float64)
    with torch.no_grad():
        model[0].weight += 1e-12  # a difference float32 cannot hold
    recorder = TrajectoryRecorder(model)
    recorder.record(0)
    trajectory = recorder.trajectory()
    assert trajectory.dtype == np.float64
    np.testing.assert_array_equal(
        trajectory.params[0], parameters_to_vector(model.parameters()).detach().numpy()
    )


def test_non_finite_weights_are_refused_and_steps_must_increase() -> None:
    model = tiny()
    recorder = TrajectoryRecorder(model)
    assert recorder.record(0, 1.0)
    with pytest.raises(ValueError, match="Expected steps to increase but step 0 follows step 0"):
        recorder.record(0)
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    assert not recorder.record(1)
    assert len(recorder) == 1


def test_recorder_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match=r"Expected model to be a torch\.nn\.Module but got str"):
        TrajectoryRecorder("model")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Expected every to be a positive integer but got 0"):
        TrajectoryRecorder(tiny(), every=0)
    with pytest.raises(ValueError, match="nothing was recorded"):
        TrajectoryRecorder(tiny()).trajectory()


def test_the_recorder_spills_past_its_memory_limit(tmp_path) -> None:
    model = tiny()
    recorder = TrajectoryRecorder(model, memory_limit=4 * 2 * 27, spill_dir=tmp_path)
    rows = []
    for step in range(5):
        with torch.no_grad():
            model[0].bias += 1.0
        recorder.record(step)
        rows.append(parameters_to_vector(model.parameters()).detach().numpy().copy())
    params = recorder.trajectory().params
    assert isinstance(params, np.memmap)
    np.testing.assert_array_equal(params, np.stack(rows))


# --- the optimizer train builds ------------------------------------------------------------------


class Momentum(GenericModel):
    """A model that builds its own optimizer, Lightning-style."""

    def __init__(self) -> None:
        super().__init__(learning_rate=0.05, num_classes=3)
        self.linear = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def configure_optimizers(self) -> dict:
        return {"optimizer": torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)}


def test_train_uses_the_models_configure_optimizers() -> None:
    torch.manual_seed(0)
    model = Momentum()
    data = SpiralsDataModule()
    trajectory = train(model, data, 3, progress=False)
    assert (trajectory.optimizer, trajectory.learning_rate) == ("sgd", 0.05)
    # the same three steps by hand, with momentum
    by_hand = Momentum()
    by_hand.load_state_dict(model.state_dict())
    opt = torch.optim.SGD(by_hand.parameters(), lr=0.05, momentum=0.9)
    X, y = data.dataset.tensors
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(by_hand(X), y).backward()
        opt.step()
    expected = parameters_to_vector(by_hand.parameters()).detach().numpy()
    np.testing.assert_allclose(trajectory.params[-1], expected, rtol=1e-6, atol=1e-7)


def test_an_explicit_optimizer_wins_over_the_models() -> None:
    model = MLP(2, 3, learning_rate=0.01, optimizer="adam")
    trajectory = train(model, SpiralsDataModule(), 1, optimizer="rmsprop", progress=False)
    assert (trajectory.optimizer, trajectory.learning_rate) == ("rmsprop", 0.01)
    trajectory = train(model, SpiralsDataModule(), 1, learning_rate=0.2, progress=False)
    assert (trajectory.optimizer, trajectory.learning_rate) == ("adam", 0.2)


# --- threads -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("num_threads", "inside"), [(None, None), ("auto", 1), (2, 2)])
def test_threads_change_only_when_asked_and_are_restored(num_threads, inside) -> None:
    before = torch.get_num_threads()
    seen: list[int] = []

    class Spy(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return super().forward(x)

    torch.manual_seed(0)
    train(Spy(2, 3), SpiralsDataModule(), 1, num_threads=num_threads, progress=False)
    assert set(seen) == {before if inside is None else inside}
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("step", [-1, 1.5, True, "2"])
def test_a_step_that_is_not_a_count_of_steps_is_refused_at_once(step) -> None:
    recorder = TrajectoryRecorder(tiny())
    with pytest.raises(
        ValueError, match=rf"Expected step to be a non-negative integer but got {step!r}"
    ):
        recorder.record(step)
    with pytest.raises(ValueError, match="Expected step to be a non-negative integer"):
        recorder.due(step)
    assert len(recorder) == 0
    assert recorder.record(np.int64(3))  # numpy integers are counts too
    assert recorder.trajectory().steps.tolist() == [3]


def test_losses_are_checked_when_recorded() -> None:
    recorder = TrajectoryRecorder(tiny())
    with pytest.raises(
        TypeError, match="Expected loss to be a number, a scalar tensor or a 0-d array but got str"
    ):
        recorder.record(0, "0.5")  # type: ignore[arg-type]
    assert recorder.record(0, np.float32(0.5), torch.tensor(0.25))
    trajectory = recorder.trajectory()
    assert (trajectory.loss[0], trajectory.accuracy[0]) == (0.5, 0.25)


def test_a_lazy_model_gets_its_rows_once_its_parameters_have_shapes(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.LazyLinear(3), nn.Linear(3, 2))
    recorder = TrajectoryRecorder(model, spill_dir=tmp_path)  # nothing to lay out yet
    with pytest.raises(
        ValueError, match=r"lazy ones without a shape yet \(0\.weight, 0\.bias\): run one batch"
    ):
        recorder.record(0)
    model(torch.randn(4, 5))
    assert recorder.record(0)
    np.testing.assert_array_equal(
        recorder.trajectory().params[0], parameters_to_vector(model.parameters()).detach().numpy()
    )


def test_a_bad_spill_dir_is_refused_when_the_recorder_is_made(tmp_path) -> None:
    with pytest.raises(
        ValueError, match=r"Expected spill_dir to be an existing folder but .* does not exist"
    ):
        TrajectoryRecorder(tiny(), spill_dir=tmp_path / "missing")
    with pytest.raises(TypeError, match="Expected spill_dir to be a folder path"):
        TrajectoryRecorder(tiny(), spill_dir=3)  # type: ignore[arg-type]
