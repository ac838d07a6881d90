"""Tests of saving and loading model weights: weights-only, never unpickling code."""

from __future__ import annotations

import copy
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from loss_landscape_anim.errors import IncompatibleFileError, UnsafeFileError
from loss_landscape_anim.models import MLP
from loss_landscape_anim.params.weights import load_weights, save_weights


class ArmedLinear(nn.Linear):
    """Unpickling this module creates the file named in its ``marker`` attribute."""

    def __setstate__(self, state: dict) -> None:
        Path(state["marker"]).touch()
        super().__setstate__(state)


class Armed:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def mlp(seed: int, hidden_dim: int = 6) -> MLP:
    torch.manual_seed(seed)
    return MLP(2, 3, hidden_dim=hidden_dim)


def same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip(tmp_path: Path) -> None:
    trained, fresh = mlp(0), mlp(1)
    fresh_before = copy.deepcopy(fresh)
    path = save_weights(trained, tmp_path / "ckpt" / "model.pt")
    assert path == tmp_path / "ckpt" / "model.pt"
    assert os.listdir(path.parent) == ["model.pt"]  # no temporary file left
    loaded = load_weights(fresh, path)
    assert loaded is not fresh
    assert type(loaded) is MLP
    assert same_state(loaded, trained)
    assert same_state(fresh, fresh_before)  # the caller's model is unchanged
    assert not same_state(fresh, trained)


def test_saved_file_is_a_plain_state_dict(tmp_path: Path) -> None:
    path = save_weights(mlp(0), tmp_path / "model.pt")
    state = torch.load(path, weights_only=True)
    assert list(state) == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
    assert all(v.device.type == "cpu" and not v.requires_grad for v in state.values())


def test_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "missing.pt"
    with pytest.raises(
        FileNotFoundError, match=f"No saved weights at {re.escape(repr(str(path)))}"
    ):
        load_weights(mlp(0), path)


def test_armed_module_runs_code_when_fully_unpickled(tmp_path: Path) -> None:
    # Guard for the next test: an unrestricted torch.load would run the payload.
    marker = tmp_path / "marker"
    module = ArmedLinear(2, 3)
    module.marker = str(marker)
    torch.save(module, tmp_path / "module.pt")
    torch.load(tmp_path / "module.pt", weights_only=False)
    assert marker.exists()


def test_pickled_whole_module_is_refused_without_running_code(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    module = ArmedLinear(2, 3)
    module.marker = str(marker)
    path = tmp_path / "module.pt"
    torch.save(module, path)
    with pytest.raises(
        UnsafeFileError,
        match=re.escape(f"Refusing to load {str(path)!r}: it is not a weights-only state_dict"),
    ):
        load_weights(nn.Linear(2, 3), path)
    assert not marker.exists()


def test_raw_pickle_is_refused_without_running_code(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"weight": Armed(marker)}))
    with pytest.raises(UnsafeFileError, match="the file is a pickle"):
        load_weights(nn.Linear(2, 3), path)
    assert not marker.exists()


@pytest.mark.parametrize(("payload", "kind"), [({"weight": 1}, "dict"), ([torch.zeros(2)], "list")])
def test_non_state_dict_is_refused(tmp_path: Path, payload: object, kind: str) -> None:
    path = tmp_path / "model.pt"
    torch.save(payload, path)
    with pytest.raises(
        UnsafeFileError, match=f"to hold a state_dict \\(names -> tensors\\) but it holds {kind}"
    ):
        load_weights(nn.Linear(2, 3), path)


def test_other_architecture_names_both(tmp_path: Path) -> None:
    path = save_weights(mlp(0, hidden_dim=6), tmp_path / "model.pt")
    model = mlp(1, hidden_dim=5)
    before = copy.deepcopy(model)
    with pytest.raises(
        IncompatibleFileError,
        match=re.escape(f"The weights in {str(path)!r} do not fit this model: the file has ")
        + r"4 tensors / 39 values \[layers\.0\.weight\[6, 2\], .*\], "
        r"the model expects 4 tensors / 33 values \[layers\.0\.weight\[5, 2\], ",
    ):
        load_weights(model, path)
    assert same_state(model, before)


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],
        lambda raw: raw[:-20],
        lambda raw: raw[:300] + bytes(300) + raw[600:],
    ],
)
def test_a_damaged_weights_file_is_called_damaged_not_unsafe(tmp_path: Path, damage) -> None:
    path = save_weights(mlp(0), tmp_path / "model.pt")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(
        IncompatibleFileError,
        match=re.escape(f"{str(path)!r} is damaged or inconsistent: PytorchStreamReader failed"),
    ) as info:
        load_weights(mlp(0), path)
    assert "\n" not in str(info.value)


def test_a_directory_is_not_a_weights_file(tmp_path: Path) -> None:
    (tmp_path / "model.pt").mkdir()
    with pytest.raises(IncompatibleFileError, match="to be a weights file but it is a directory"):
        load_weights(mlp(0), tmp_path / "model.pt")
