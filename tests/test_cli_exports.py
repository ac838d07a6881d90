"""The command's export options: --export (repeatable), --tensorboard, --from-h5 and --h5-key,
through ``main([...])``; the files read back with their own libraries."""

from __future__ import annotations

import h5py
import meshio
import numpy as np
import pytest
import pyvista
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

from loss_landscape_anim import LossGrid
from loss_landscape_anim.cli import PROG, main

TINY = ["--epochs", "4", "--resolution", "6", "--frames", "3", "--no-progress"]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def li_file(path, nx=7, ny=5) -> np.ndarray:
    """A surface file written as Li et al.'s code writes it; returns the losses (ny, nx)."""
    xs, ys = np.linspace(-1, 1, nx), np.linspace(-0.5, 1.5, ny)
    X, Y = np.meshgrid(xs, ys)
    loss = 0.3 + (X - 0.4) ** 2 + 3 * (Y - 0.1) ** 2
    with h5py.File(path, "w") as fh:
        fh["xcoordinates"], fh["ycoordinates"] = xs, ys
        fh["train_loss"] = loss.reshape(nx, ny)  # their declared shape, their flat order
        fh["test_loss"] = 2 * loss.reshape(nx, ny)
    return loss


def tensorboard_tags(folder) -> dict:
    reader = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.IMAGES: 0, event_accumulator.TENSORS: 0}
    )
    reader.Reload()
    return reader.Tags()


def test_a_run_exports_every_file_and_logs_to_tensorboard(tmp_path):
    args = [*TINY, "--output", "run.gif", "--tensorboard", "tb"]
    for name in ("run.vtp", "run.stl", "run.h5"):
        args += ["--export", name]
    assert main(args) == 0
    grid = LossGrid.load_h5(tmp_path / "run.h5")
    assert grid.loss.shape == (6, 6) and grid.margin == 0.3
    assert grid.plane_fingerprint is not None  # the run's plane
    vtp = pyvista.read(tmp_path / "run.vtp")
    assert vtp.n_points == 36 + 5 and vtp.n_lines == 1  # the surface, the path of 5 rows
    np.testing.assert_array_equal(vtp.point_data["loss"][:36], grid.loss.ravel())
    stl = meshio.read(tmp_path / "run.stl")
    assert len(stl.cells[0].data) == 2 * 25
    tags = tensorboard_tags(tmp_path / "tb")
    assert set(tags["images"]) == {"loss_landscape/animation", "loss_landscape/landscape"}
    assert "loss_landscape/surface_VERTEX" in tags["tensors"]


def test_from_h5_animates_a_surface_file_with_no_model(tmp_path):
    loss = li_file(tmp_path / "surf.h5")
    args = ["--from-h5", "surf.h5", "--h5-key", "test_loss", "--output", "surf.gif"]
    args += ["--frames", "4", "--no-progress", "--export", "surf.ply"]
    assert main(args) == 0
    with Image.open(tmp_path / "surf.gif") as gif:
        assert gif.n_frames == 4  # the camera turns
    ply = meshio.read(tmp_path / "surf.ply")
    np.testing.assert_array_equal(ply.point_data["loss"], 2 * loss.ravel())
    assert not (tmp_path / "checkpoints").exists()  # nothing trained, nothing saved


def test_from_h5_with_contour_is_one_still_frame(tmp_path):
    li_file(tmp_path / "surf.h5")
    args = ["--from-h5", "surf.h5", "--view", "contour", "--output", "surf.gif", "--no-progress"]
    assert main(args) == 0
    with Image.open(tmp_path / "surf.gif") as gif:
        assert gif.n_frames == 1


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--h5-key", "test_loss"], "--h5-key applies to --from-h5 only"),
        (["--from-h5", "s.h5", "--compare", "adam,sgd"], "--compare needs a trained model"),
        (["--from-h5", "s.h5", "--line"], "--line needs a trained model"),
        (["--export", "x.txt"], "export files ending in one of .vts, .vtp, .obj, .stl, .ply, .h5"),
    ],
)
def test_options_that_do_not_apply_exit_2_with_one_line(capsys, args, fragment):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{PROG}: error: ") and len(err.splitlines()) == 1
    assert fragment in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--from-h5", "missing.h5"], "No such file: 'missing.h5'"),
        (["--from-h5", "surf.h5", "--h5-key", "val_loss"], "has no dataset 'val_loss'"),
    ],
)
def test_a_missing_file_or_surface_exits_2_with_one_line(tmp_path, capsys, args, fragment):
    li_file(tmp_path / "surf.h5")
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{PROG}: error: ") and len(err.splitlines()) == 1
    assert fragment in err and "Traceback" not in err
    assert not (tmp_path / "sample.gif").exists()
