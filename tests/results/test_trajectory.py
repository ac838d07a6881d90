"""Tests of ``Trajectory``: validation, save/load, dtypes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from loss_landscape_anim._io import save_npz
from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.params.layout import ParamLayout
from loss_landscape_anim.results import Trajectory

LAYOUT = ParamLayout(("w", "b"), ((2, 3), (2,)))  # 8 parameters


def make_trajectory(T: int = 5, seed: int = 0) -> Trajectory:
    rng = np.random.default_rng(seed)
    return Trajectory(
        params=rng.normal(size=(T, 8)).astype(np.float32),
        loss=rng.uniform(size=T),
        accuracy=np.r_[rng.uniform(size=T - 1), np.nan],
        steps=np.arange(T, dtype=np.int64) * 3,
        layout=LAYOUT,
        optimizer="sgd",
        learning_rate=0.25,
        diverged=True,
    )


def assert_same(a: Trajectory, b: Trajectory) -> None:
    for name in ("params", "loss", "accuracy", "steps"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y)
    assert a.layout == b.layout
    assert (a.optimizer, a.learning_rate, a.diverged) == (b.optimizer, b.learning_rate, b.diverged)


def test_save_load_round_trip(tmp_path: Path) -> None:
    trajectory = make_trajectory()
    path = trajectory.save(tmp_path / "run" / "trajectory.npz")
    assert path == tmp_path / "run" / "trajectory.npz"
    assert_same(Trajectory.load(path), trajectory)


def test_round_trip_of_default_metadata(tmp_path: Path) -> None:
    t = make_trajectory()
    plain = Trajectory(t.params, t.loss, t.accuracy, t.steps, t.layout)
    loaded = Trajectory.load(plain.save(tmp_path / "t.npz"))
    assert loaded.optimizer == ""
    assert np.isnan(loaded.learning_rate)
    assert loaded.diverged is False


def test_load_refuses_another_kind(tmp_path: Path) -> None:
    path = save_npz(tmp_path / "g.npz", "LossGrid", {"loss": np.zeros((2, 2))}, {})
    with pytest.raises(
        IncompatibleFileError, match="to hold a Trajectory but it holds a 'LossGrid'"
    ):
        Trajectory.load(path)


def test_accessors() -> None:
    t = make_trajectory()
    assert len(t) == 5
    assert t.n_params == 8
    np.testing.assert_array_equal(t.final_params, t.params[-1])
    state = t.state_dict(1)
    assert state["w"].shape == (2, 3) and state["b"].shape == (2,)
    np.testing.assert_array_equal(state["w"].numpy().ravel(), t.params[1, :6])
    np.testing.assert_array_equal(state["b"].numpy(), t.params[1, 6:])
    state["w"].zero_()  # new tensors: the trajectory is not changed
    assert np.any(t.params[1, :6] != 0)


def test_rejects_params_of_the_wrong_width() -> None:
    t = make_trajectory()
    with pytest.raises(ValueError, match=r"Expected params of shape \(T, 8\) but got \(5, 7\)"):
        Trajectory(t.params[:, :7], t.loss, t.accuracy, t.steps, t.layout)
    with pytest.raises(ValueError, match=r"Expected params of shape \(T, 8\) but got \(8,\)"):
        Trajectory(t.params[0], t.loss, t.accuracy, t.steps, t.layout)


@pytest.mark.parametrize("name", ["loss", "accuracy", "steps"])
def test_rejects_columns_of_the_wrong_length(name: str) -> None:
    t = make_trajectory()
    fields = {"loss": t.loss, "accuracy": t.accuracy, "steps": t.steps}
    fields[name] = fields[name][:4]
    with pytest.raises(ValueError, match=rf"Expected {name} of shape \(5,\) but got \(4,\)"):
        Trajectory(t.params, layout=t.layout, **fields)


def test_rejects_an_empty_trajectory() -> None:
    empty = np.zeros(0)
    with pytest.raises(ValueError, match="at least one recorded step"):
        Trajectory(np.zeros((0, 8), np.float32), empty, empty, empty, LAYOUT)


def test_a_float64_trajectory_keeps_its_dtype_through_save_and_state_dict(tmp_path: Path) -> None:
    t = make_trajectory()
    wide = Trajectory(
        t.params.astype(np.float64) / 3, t.loss, t.accuracy, t.steps, t.layout, optimizer="sgd"
    )
    loaded = Trajectory.load(wide.save(tmp_path / "t.npz"))
    assert loaded.dtype == np.float64
    np.testing.assert_array_equal(loaded.params, wide.params)
    state = loaded.state_dict(2)
    assert state["w"].dtype == torch.float64
    np.testing.assert_array_equal(state["w"].numpy().ravel(), wide.params[2, :6])


def test_the_fingerprint_tells_runs_apart_but_not_filled_losses() -> None:
    layout = ParamLayout(("w",), ((3,),))
    params = np.arange(12, dtype=np.float32).reshape(4, 3)
    a = Trajectory(params, np.full(4, np.nan), np.full(4, np.nan), np.arange(4), layout)
    filled = Trajectory(params, np.ones(4), np.full(4, np.nan), np.arange(4), layout)
    assert a.fingerprint() == filled.fingerprint()  # fill_losses keeps the run
    moved = params.copy()
    moved[-1, 0] += 1.0
    for other in (
        Trajectory(moved, a.loss, a.accuracy, a.steps, layout),
        Trajectory(params, a.loss, a.accuracy, np.arange(4) * 2, layout),
    ):
        assert other.fingerprint() != a.fingerprint()


def test_a_plane_knows_the_path_it_holds() -> None:
    from loss_landscape_anim.results import Plane

    layout = ParamLayout(("w",), ((3,),))
    rng = np.random.default_rng(0)
    params = rng.normal(size=(5, 3))
    trajectory = Trajectory(params, np.ones(5), np.ones(5), np.arange(5), layout)
    plane = Plane(params[-1], np.eye(2, 3), np.zeros((1, 2)), np.zeros(1)).with_path(trajectory)
    plane.check_path(trajectory)
    other = Trajectory(params + 0.5, np.ones(5), np.ones(5), np.arange(5), layout)
    with pytest.raises(IncompatibleFileError, match="The plane's path is not this trajectory's"):
        plane.check_path(other)
    wider = Trajectory(
        np.zeros((5, 4)), np.ones(5), np.ones(5), np.arange(5), ParamLayout(("w",), ((4,),))
    )
    with pytest.raises(
        IncompatibleFileError, match=r"3 parameters \(the plane's\) but its rows hold 4"
    ):
        plane.with_path(wider)
