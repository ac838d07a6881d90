"""``loss-landscape-anim --model tiny-gpt``: the built-in transformer job from the command line, and
the model and data combinations it refuses."""

from __future__ import annotations

import pytest
from PIL import Image

from loss_landscape_anim import TinyGPT, Trajectory
from loss_landscape_anim.cli import PROG, main


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_tiny_gpt_trains_a_transformer_and_animates_it(tmp_path) -> None:
    args = ["--model", "tiny-gpt", "--epochs", "4", "--resolution", "5", "--no-progress"]
    assert main([*args, "--output", "gpt.gif"]) == 0
    with Image.open(tmp_path / "gpt.gif") as gif:
        assert gif.n_frames == 5 and gif.size == (900, 600)
    trajectory = Trajectory.load(tmp_path / "checkpoints" / "model.trajectory.npz")
    assert trajectory.n_params == sum(p.numel() for p in TinyGPT().parameters())
    assert len(trajectory) == 5
    assert trajectory.layout.names[0] == "tokens.weight"
    assert main([*args, "--output", "again.gif", "--load"]) == 0  # re-rendered from its files
    assert (tmp_path / "again.gif").read_bytes() == (tmp_path / "gpt.gif").read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "tiny-gpt", "--data", "mnist"], "--data does not apply with --model tiny-gpt"),
        (["--model", "tiny-gpt", "--data", "spirals"], "--data does not apply with --model"),
        (["--model", "lenet"], "--model lenet trains on --data mnist, not --data spirals"),
        (["--model", "mlp", "--data", "mnist"], "--model mlp trains on --data spirals"),
        (["--model", "gpt-5"], "argument --model: invalid choice: 'gpt-5'"),
    ],
)
def test_models_refuse_data_they_do_not_take(args, message, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{PROG}: error: ") and message in err and len(err.splitlines()) == 1


def test_tiny_gpt_has_its_own_epochs_and_resolution_unless_given(monkeypatch) -> None:
    import loss_landscape_anim.pipeline as pipeline

    calls: list[tuple] = []
    monkeypatch.setattr(pipeline, "loss_landscape_anim", lambda *a, **k: calls.append((a, k)))
    assert main(["--model", "tiny-gpt", "--no-progress"]) == 0
    assert main(["--model", "tiny-gpt", "--epochs", "7", "--resolution", "9", "--no-progress"]) == 0
    assert main(["--no-progress"]) == 0
    (first, kw1), (second, kw2), (third, kw3) = calls
    assert (first[0], kw1["resolution"]) == (100, 60)
    assert (second[0], kw2["resolution"]) == (7, 9)
    assert (third[0], kw3["resolution"]) == (300, 100)
    assert type(kw1["model"]).__name__ == "TinyGPT" and kw3["model"] is None
