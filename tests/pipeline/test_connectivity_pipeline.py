"""``compare_optimizers(..., connectivity=True)`` and ``--connect``: the table of barriers (line,
aligned, curve) against the analyses run by hand, each curve's animation beside the output, a model
whose units cannot be permuted, and the command line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from loss_landscape_anim import (
    SpiralsDataModule,
    compare_optimizers,
    loss_along_curve,
    loss_along_line,
)
from loss_landscape_anim.cli import main
from loss_landscape_anim.pipeline.connectivity import CONNECT_POINTS, connectivity_path


@pytest.fixture(scope="module")
def linked(tmp_path_factory):
    out = tmp_path_factory.mktemp("connect") / "compare.gif"
    data = SpiralsDataModule(n_per_class=60)
    result = compare_optimizers(
        ["adam", "sgd"],
        15,
        seed=0,
        output_filename=out,
        learning_rates={"sgd": 0.5},
        resolution=6,
        n_frames=5,
        datamodule=data,
        progress=False,
        connectivity=True,
    )
    return result, out, data


def test_the_table_holds_the_barriers_of_the_line_the_aligned_line_and_the_curve(linked):
    result, _, data = linked
    assert list(result.connectivity) == [("adam", "sgd")]
    link = result.connectivity[("adam", "sgd")]
    a, b = (result.trajectories[n].final_params for n in ("adam", "sgd"))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        from loss_landscape_anim import MLP

        model = MLP(input_dim=2, num_classes=3)
    line = loss_along_line(model, data, a, b, n_points=CONNECT_POINTS)
    assert link.line_barrier == line.barrier
    np.testing.assert_array_equal(link.line.loss, line.loss)
    assert link.curve.labels == ("adam", "sgd") and link.curve.train_loss.shape == (15,)
    assert link.curve_barrier == loss_along_curve(model, data, link.curve, n_points=41).barrier
    assert link.aligned_barrier <= link.line_barrier
    assert math.isfinite(link.curve_barrier)


def test_each_curve_is_animated_beside_the_output(linked):
    _, out, _ = linked
    path = connectivity_path(out, "adam", "sgd")
    assert path.name == "compare.connect-adam-sgd.gif"
    with Image.open(path) as im:
        assert im.size == (900, 600) and im.n_frames == 5
    assert {p.name for p in out.parent.iterdir()} == {out.name, path.name}


def test_no_table_unless_asked():
    result = compare_optimizers(
        ["adam", "sgd"],
        2,
        seed=0,
        output_filename=None,
        resolution=3,
        datamodule=SpiralsDataModule(n_per_class=20),
        progress=False,
    )
    assert result.connectivity is None


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(2, 6)
        self.out = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        return self.out(h + h)


def test_units_that_cannot_be_permuted_leave_the_aligned_barrier_out(caplog):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Residual()
    result = compare_optimizers(
        ["adam", "sgd"],
        4,
        model=model,
        seed=0,
        output_filename=None,
        resolution=3,
        datamodule=SpiralsDataModule(n_per_class=20),
        progress=False,
        connectivity=True,
    )
    link = result.connectivity[("adam", "sgd")]
    assert math.isnan(link.aligned_barrier) and math.isfinite(link.curve_barrier)
    assert "no aligned barrier between adam and sgd" in caplog.text


def test_the_command_line_connects_the_compared_optimizers(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["--epochs", "3", "--resolution", "4", "--frames", "3", "--no-progress"]
    assert main([*args, "--compare", "adam,sgd", "--connect", "--output", "c.html"]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"c.connect-adam-sgd.html", "c.html"}
    with pytest.raises(SystemExit) as info:
        main([*args, "--connect"])
    assert info.value.code == 2
    assert "--connect needs --compare" in capsys.readouterr().err
