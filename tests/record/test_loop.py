"""Tests of ``record_training``: rows of a plain PyTorch loop against the weights that loop produced,
losses paired with their own weights, thinning, gradient accumulation, filling the missing losses,
spilling, divergence, errors, and the README's loop."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from loss_landscape_anim import fill_losses, record_training
from loss_landscape_anim.data import SpiralsDataModule
from loss_landscape_anim.errors import DivergenceWarning
from loss_landscape_anim.params.store import SpilledRows

README = Path(__file__).resolve().parents[2] / "README.md"


def spirals() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = SpiralsDataModule().dataset.tensors
    return X, y


def small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))


def flat(model: nn.Module) -> np.ndarray:
    return parameters_to_vector(model.parameters()).detach().numpy().copy()


def loss_of(model: nn.Module, row: np.ndarray, X: torch.Tensor, y: torch.Tensor) -> float:
    copy_ = copy.deepcopy(model)
    vector_to_parameters(torch.from_numpy(np.array(row)), copy_.parameters())
    with torch.no_grad():
        return float(F.cross_entropy(copy_(X), y))


def run_loop(model, optimizer, X, y, n_steps, recording=None, batch=None):
    """A plain loop; returns the weights before each step and after the last, and the losses."""
    weights, losses = [flat(model)], []
    for step in range(n_steps):
        xb, yb = (
            (X, y)
            if batch is None
            else (X[step * batch : (step + 1) * batch], y[step * batch : (step + 1) * batch])
        )
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        if recording is not None:
            recording.report_loss(loss, (out.argmax(1) == yb).float().mean())
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        weights.append(flat(model))
    return np.stack(weights), np.array(losses)


def test_rows_are_the_weights_after_each_step_with_their_own_loss() -> None:
    X, y = spirals()
    model = small_net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    with record_training(model, optimizer) as recording:
        weights, losses = run_loop(model, optimizer, X, y, 5, recording, batch=200)
    trajectory = recording.trajectory()

    np.testing.assert_array_equal(trajectory.steps, np.arange(6))
    np.testing.assert_array_equal(trajectory.params, weights)  # copies, not views of the model
    np.testing.assert_allclose(trajectory.loss[:5], losses, rtol=1e-12)
    assert math.isnan(trajectory.loss[5])  # the final weights: nothing measured them
    assert math.isnan(trajectory.accuracy[5])
    assert np.all((trajectory.accuracy[:5] >= 0) & (trajectory.accuracy[:5] <= 1))
    assert trajectory.optimizer == "adam"
    assert trajectory.learning_rate == 0.05
    assert not trajectory.diverged


def test_every_k_records_due_steps_and_the_final_weights_and_drops_other_losses() -> None:
    X, y = spirals()
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    with record_training(model, optimizer, every=3) as recording:
        weights, losses = run_loop(model, optimizer, X, y, 7, recording)
    trajectory = recording.trajectory()
    np.testing.assert_array_equal(trajectory.steps, [0, 3, 6, 7])
    np.testing.assert_array_equal(trajectory.params, weights[[0, 3, 6, 7]])
    np.testing.assert_allclose(trajectory.loss[:3], losses[[0, 3, 6]], rtol=1e-12)
    assert math.isnan(trajectory.loss[3])


def test_reports_between_two_steps_are_averaged() -> None:
    """Gradient accumulation: two micro-batches per step, both measured on the same weights."""
    X, y = spirals()
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    expected = []
    with record_training(model, optimizer) as recording:
        for _ in range(3):
            optimizer.zero_grad()
            parts = []
            for half in (slice(0, 500), slice(500, None)):
                loss = F.cross_entropy(model(X[half]), y[half])
                recording.report_loss(loss.item())
                parts.append(loss.item())
                (loss / 2).backward()
            optimizer.step()
            expected.append(np.mean(parts))
    trajectory = recording.trajectory()
    np.testing.assert_allclose(trajectory.loss[:3], expected, rtol=1e-12)
    assert np.isnan(trajectory.accuracy).all()  # none reported


def test_no_rows_after_the_block_and_the_model_keeps_its_settings() -> None:
    X, y = spirals()
    model = small_net()
    model[0].bias.requires_grad_(False)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    with record_training(model, optimizer) as recording:
        run_loop(model, optimizer, X, y, 2, recording)
    run_loop(model, optimizer, X, y, 2)  # outside the block: not recorded
    assert len(recording) == 3
    assert recording.trajectory().steps.tolist() == [0, 1, 2]
    assert model.training
    assert not model[0].bias.requires_grad
    assert not optimizer._optimizer_step_post_hooks  # the hook is gone


def test_an_error_in_the_loop_keeps_the_rows_so_far() -> None:
    X, y = spirals()
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(KeyboardInterrupt), record_training(model, optimizer) as recording:
        run_loop(model, optimizer, X, y, 2, recording)
        raise KeyboardInterrupt
    trajectory = recording.trajectory()
    assert trajectory.steps.tolist() == [0, 1, 2]
    assert not optimizer._optimizer_step_post_hooks


def test_fill_losses_gives_the_true_loss_of_unmeasured_rows() -> None:
    X, y = spirals()
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    with record_training(model, optimizer, every=2) as recording:
        run_loop(model, optimizer, X, y, 5, recording, batch=100)
    trajectory = recording.trajectory()
    assert np.isnan(trajectory.loss).tolist() == [False, False, False, True]

    filled = fill_losses(trajectory, model, (X, y))
    np.testing.assert_array_equal(filled.loss[:3], trajectory.loss[:3])  # measured: kept
    assert filled.loss[3] == pytest.approx(loss_of(model, trajectory.params[3], X, y), rel=1e-5)
    np.testing.assert_array_equal(filled.accuracy, trajectory.accuracy)
    assert np.isnan(trajectory.loss[3])  # the original is unchanged

    everything = fill_losses(trajectory, model, (X, y), overwrite=True)
    expected = [loss_of(model, row, X, y) for row in trajectory.params]
    np.testing.assert_allclose(everything.loss, expected, rtol=1e-5)


def test_rows_spill_to_disk_past_the_memory_limit() -> None:
    X, y = spirals()
    model = small_net()
    n_params = flat(model).size
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    with record_training(model, optimizer, memory_limit=2 * n_params * 4) as recording:
        weights, _ = run_loop(model, optimizer, X, y, 4, recording)
    trajectory = recording.trajectory()
    assert isinstance(trajectory.params, SpilledRows)
    np.testing.assert_array_equal(trajectory.params, weights)


def test_non_finite_weights_stop_the_recording_with_a_warning() -> None:
    X, y = spirals()
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with record_training(model, optimizer) as recording:
        run_loop(model, optimizer, X, y, 2, recording)
        with torch.no_grad():  # after step 2, before its row is taken: part of that row
            model[0].weight[0, 0] = math.inf
        with pytest.warns(DivergenceWarning, match="not finite after step 2"):
            run_loop(model, optimizer, X, y, 2, recording)
    trajectory = recording.trajectory()
    assert trajectory.diverged
    assert trajectory.steps.tolist() == [0, 1]


@pytest.mark.parametrize(
    ("model", "optimizer", "options", "error", "match"),
    [
        ("net", "other", {}, ValueError, "none of its 4 parameters belongs to the Sequential"),
        ("net", None, {}, TypeError, "Expected optimizer to be a torch.optim.Optimizer but got"),
        (None, "own", {}, TypeError, "Expected model to be a torch.nn.Module but got NoneType"),
        (
            "net",
            "own",
            {"every": 0},
            ValueError,
            "Expected every to be a positive integer but got 0",
        ),
    ],
)
def test_bad_arguments_are_refused(model, optimizer, options, error, match) -> None:
    net = small_net()
    optimizers = {
        "own": torch.optim.SGD(net.parameters(), lr=0.1),
        "other": torch.optim.SGD(small_net(1).parameters(), lr=0.1),
        None: "sgd",
    }
    with (
        pytest.raises(error, match=match),
        record_training(net if model == "net" else None, optimizers[optimizer], **options),
    ):
        pass


def test_a_loss_that_is_not_a_scalar_is_refused() -> None:
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with record_training(model, optimizer) as recording:
        with pytest.raises(ValueError, match=r"scalar loss but got a tensor of shape \(3,\)"):
            recording.report_loss(torch.ones(3))
        with pytest.raises(ValueError, match=r"scalar accuracy but got an array of shape \(2,\)"):
            recording.report_loss(1.0, np.ones(2))
        with pytest.raises(
            TypeError,
            match="Expected loss to be a number, a scalar tensor or a 0-d array but got str",
        ):
            recording.report_loss("0.5")
        for flag in (True, np.bool_(True), torch.tensor(True)):
            with pytest.raises(TypeError, match="Expected loss to be a"):
                recording.report_loss(flag)


def test_numpy_scalars_and_0d_arrays_are_reported_as_numbers() -> None:
    X, y = spirals()
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    reported = []
    kinds = (np.float32, np.float64, np.array, lambda v: np.array([v], dtype=np.float32))
    with record_training(model, optimizer) as recording:
        for as_kind in kinds:
            out = model(X)
            loss = F.cross_entropy(out, y)
            accuracy = (out.argmax(1) == y).float().mean().item()
            recording.report_loss(as_kind(loss.item()), as_kind(accuracy))
            reported.append((as_kind(loss.item()).item(), as_kind(accuracy).item()))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    trajectory = recording.trajectory()
    np.testing.assert_array_equal(trajectory.loss[:4], [r[0] for r in reported])
    np.testing.assert_array_equal(trajectory.accuracy[:4], [r[1] for r in reported])


@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
def test_lbfgs_rows_keep_the_loss_of_their_own_weights_not_of_trial_weights(line_search) -> None:
    """LBFGS calls the closure on trial weights after the first call: only the first call
    measured the row's weights."""
    X, y = spirals()
    model = small_net()
    optimizer = torch.optim.LBFGS(
        model.parameters(), lr=0.5, max_iter=5, line_search_fn=line_search
    )
    calls = []
    with record_training(model, optimizer) as recording:
        for _ in range(3):

            def closure():
                optimizer.zero_grad()
                out = model(X)
                loss = F.cross_entropy(out, y)
                recording.report_loss(loss, (out.argmax(1) == y).float().mean())
                calls.append(loss.item())
                loss.backward()
                return loss

            optimizer.step(closure)
    assert len(calls) > 3  # trial weights were evaluated
    trajectory = recording.trajectory()
    assert trajectory.steps.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(trajectory.params[-1], flat(model))
    own = [loss_of(model, row, X, y) for row in trajectory.params[:3]]  # oracle: a direct loss
    np.testing.assert_allclose(trajectory.loss[:3], own, rtol=1e-6)
    assert math.isnan(trajectory.loss[3])


@pytest.mark.parametrize("report", [True, False])
def test_a_second_optimizer_stepping_after_the_recorded_one_is_in_every_row(report) -> None:
    """Row t holds the weights after the whole iteration t, the last row the final weights."""
    X, y = spirals()
    model = small_net()
    first = torch.optim.SGD(model[0].parameters(), lr=0.5)
    second = torch.optim.SGD(model[2].parameters(), lr=0.5)
    weights, losses = [flat(model)], []
    with record_training(model, first) as recording:
        for _ in range(4):
            loss = F.cross_entropy(model(X), y)
            if report:
                recording.report_loss(loss)
            losses.append(loss.item())
            first.zero_grad()
            second.zero_grad()
            loss.backward()
            first.step()
            second.step()
            weights.append(flat(model))
    trajectory = recording.trajectory()
    assert trajectory.steps.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(trajectory.params, np.stack(weights))
    np.testing.assert_array_equal(trajectory.params[-1], flat(model))  # the final weights
    if report:
        np.testing.assert_allclose(trajectory.loss[:4], losses, rtol=1e-12)
        own = [loss_of(model, row, X, y) for row in trajectory.params[:4]]
        np.testing.assert_allclose(trajectory.loss[:4], own, rtol=1e-6)


def test_a_lazy_model_is_recorded_from_its_first_batch() -> None:
    X, y = spirals()
    torch.manual_seed(0)
    model = nn.Sequential(nn.LazyLinear(8), nn.Tanh(), nn.Linear(8, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    weights, losses = [], []
    with record_training(model, optimizer) as recording:
        for _ in range(3):
            loss = F.cross_entropy(model(X), y)  # the first batch gives LazyLinear its shape
            weights.append(flat(model))
            recording.report_loss(loss)
            losses.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    trajectory = recording.trajectory()
    assert trajectory.steps.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(trajectory.params, np.stack([*weights, flat(model)]))
    np.testing.assert_allclose(trajectory.loss[:3], losses, rtol=1e-12)
    assert trajectory.layout.names[0] == "0.weight" and trajectory.n_params == 2 * 8 + 8 + 27


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_bad_spill_dir_is_refused_on_entering_the_block(tmp_path, kind) -> None:
    folder = tmp_path / "missing"
    if kind == "file":
        folder = tmp_path / "a-file"
        folder.write_text("")
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    what = "does not exist" if kind == "missing" else "is not a folder"
    with (
        pytest.raises(
            ValueError, match=f"Expected spill_dir to be an existing folder but .* {what}"
        ),
        record_training(model, optimizer, spill_dir=folder),
    ):
        pytest.fail("the block must not run")
