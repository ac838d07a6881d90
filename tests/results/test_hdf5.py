"""LossGrid.save_h5 / load_h5: Li et al.'s HDF5 surface layout, checked against files written with
h5py the way their reference code (plot_surface.py) writes them."""

from __future__ import annotations

import numpy as np
import pytest

from loss_landscape_anim import IncompatibleFileError, LossGrid

h5py = pytest.importorskip("h5py")


def surface(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """An asymmetric surface: swapping x and y, or flipping either, changes it."""
    return 1.0 + 0.7 * x + 3.0 * y**2 + 0.5 * x * y + 0.1 * x**3


def write_like_reference(path, xs, ys, *, key="train_loss", extra=None):
    """A surface file as Li et al.'s code writes it: the surface allocated as (len(x), len(y)) and
    filled through its flat index k, paired with the k-th point of meshgrid(x, y)."""
    values = -np.ones((len(xs), len(ys)))
    X, Y = np.meshgrid(xs, ys)
    flat = values.reshape(-1)  # a view: writing it fills values
    for k in range(values.size):
        flat[k] = surface(X.reshape(-1)[k], Y.reshape(-1)[k])
    with h5py.File(path, "w") as fh:
        fh["dir_file"] = "directions.h5"
        fh["xcoordinates"] = xs
        fh["ycoordinates"] = ys
        fh[key] = values
        fh["train_acc"] = np.full(values.shape, 55.0)
        for name, array in (extra or {}).items():
            fh[name] = array
    return values


@pytest.mark.parametrize(("nx", "ny"), [(7, 7), (6, 4), (3, 5)], ids=["square", "wide", "tall"])
def test_a_reference_file_loads_point_by_point(tmp_path, nx, ny):
    xs = np.linspace(-1.0, 1.0, nx)
    ys = np.linspace(-0.5, 2.0, ny)
    write_like_reference(tmp_path / "surf.h5", xs, ys)
    grid = LossGrid.load_h5(tmp_path / "surf.h5")
    np.testing.assert_array_equal(grid.xs, xs)
    np.testing.assert_array_equal(grid.ys, ys)
    assert grid.loss.shape == (ny, nx)
    for i in range(ny):
        for j in range(nx):  # loss[i, j] is at (xs[j], ys[i])
            assert grid.loss[i, j] == surface(xs[j], ys[i])
    i, j = np.unravel_index(np.argmin(grid.loss), grid.loss.shape)
    np.testing.assert_array_equal(grid.argmin, [xs[j], ys[i]])
    assert grid.margin is None and grid.plane_fingerprint is None


def test_another_surface_of_the_file_loads_by_key(tmp_path):
    xs, ys = np.linspace(-1, 1, 4), np.linspace(-1, 1, 4)
    write_like_reference(tmp_path / "surf.h5", xs, ys)
    accuracy = LossGrid.load_h5(tmp_path / "surf.h5", key="train_acc")
    np.testing.assert_array_equal(accuracy.loss, np.full((4, 4), 55.0))


def grid_with_provenance() -> LossGrid:
    xs, ys = np.linspace(-1.0, 1.5, 5), np.linspace(-2.0, 0.5, 4)
    loss = surface(*np.meshgrid(xs, ys))
    loss[1, 3] = np.nan  # a diverged point
    return LossGrid.from_values(
        xs, ys, loss, margin=0.3, n_examples=128, precision="float32", plane_fingerprint="ab12"
    )


def test_round_trip_keeps_every_value_and_the_provenance(tmp_path):
    grid = grid_with_provenance()
    written = grid.save_h5(tmp_path / "ours.h5")
    assert written == tmp_path / "ours.h5"
    back = LossGrid.load_h5(written)
    for name in ("xs", "ys", "loss", "argmin"):
        np.testing.assert_array_equal(getattr(back, name), getattr(grid, name))
    for name in ("loss_min", "margin", "n_examples", "precision", "plane_fingerprint"):
        assert getattr(back, name) == getattr(grid, name)
    assert not list(tmp_path.glob("*.part"))


def test_written_file_reads_as_their_plotting_scripts_read_it(tmp_path):
    grid = grid_with_provenance()
    grid.save_h5(tmp_path / "ours.h5", key="test_loss")
    with h5py.File(tmp_path / "ours.h5", "r") as fh:
        X, Y = np.meshgrid(fh["xcoordinates"][:], fh["ycoordinates"][:])
        Z = fh["test_loss"][:]
        assert Z.shape == X.shape  # contour(X, Y, Z) as in their plot_2D.py
        # h52vtp.py pairs the raveled meshgrid with the raveled values
        for x, y, z in zip(X.ravel(), Y.ravel(), Z.ravel(), strict=True):
            if np.isfinite(z):
                assert z == surface(x, y)
        attrs = dict(fh.attrs)
    assert attrs["creator"] == "loss_landscape_anim"
    assert attrs["margin"] == 0.3 and attrs["n_examples"] == 128
    assert attrs["precision"] == "float32" and attrs["plane_fingerprint"] == "ab12"


def test_unknown_provenance_is_left_out(tmp_path):
    grid = LossGrid.from_values(np.arange(2.0), np.arange(3.0), np.ones((3, 2)))
    grid.save_h5(tmp_path / "g.h5")
    with h5py.File(tmp_path / "g.h5", "r") as fh:
        assert set(fh.attrs) == {"creator"}


def test_a_missing_surface_names_the_ones_there(tmp_path):
    write_like_reference(tmp_path / "surf.h5", np.arange(3.0), np.arange(3.0))
    with pytest.raises(
        IncompatibleFileError, match=r"no dataset 'test_loss'; it holds \['dir_file', 'train_acc'"
    ):
        LossGrid.load_h5(tmp_path / "surf.h5", key="test_loss")


def test_a_1d_surface_is_refused(tmp_path):
    with h5py.File(tmp_path / "line.h5", "w") as fh:
        fh["xcoordinates"] = np.linspace(-1, 1, 5)
        fh["train_loss"] = np.ones(5)
    with pytest.raises(IncompatibleFileError, match=r"no dataset 'ycoordinates'.*1-D surface"):
        LossGrid.load_h5(tmp_path / "line.h5")


def test_a_surface_of_the_wrong_size_is_refused(tmp_path):
    write_like_reference(
        tmp_path / "surf.h5", np.arange(3.0), np.arange(3.0), extra={"test_loss": np.ones((2, 2))}
    )
    with pytest.raises(IncompatibleFileError, match=r"shape \(2, 2\).*3 x 3 grid"):
        LossGrid.load_h5(tmp_path / "surf.h5", key="test_loss")


def test_decreasing_coordinates_are_refused(tmp_path):
    write_like_reference(tmp_path / "surf.h5", np.array([1.0, 0.0, -1.0]), np.arange(3.0))
    with pytest.raises(IncompatibleFileError, match="xs to be strictly increasing"):
        LossGrid.load_h5(tmp_path / "surf.h5")


def test_not_hdf5_missing_file_and_bad_key(tmp_path):
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(IncompatibleFileError, match="not HDF5"):
        LossGrid.load_h5(tmp_path / "text.h5")
    with pytest.raises(FileNotFoundError, match="No such file"):
        LossGrid.load_h5(tmp_path / "missing.h5")
    grid = grid_with_provenance()
    with pytest.raises(ValueError, match="Expected key to be the name of a surface dataset"):
        grid.save_h5(tmp_path / "g.h5", key="xcoordinates")
    with pytest.raises(ValueError, match=r"Expected key .* but got 3"):
        LossGrid.load_h5(tmp_path / "g.h5", key=3)  # type: ignore[arg-type]
