"""Files written by version 0.2.0 (``tests/fixtures/v0_2``) still load, and every result type
saves and loads with nothing lost: each field checked against the raw arrays and metadata that
numpy alone reads from the file."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from loss_landscape_anim.evaluate.checkpoint import GridCheckpoint
from loss_landscape_anim.results import (
    CurvatureGrid,
    DecisionRegions,
    HessianSpectrum,
    HessianTrace,
    LossGrid,
    LossLine,
    PathCurvature,
    PathLosses,
    Plane,
    Trajectory,
)

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "v0_2"


def raw(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and the JSON metadata of a file, read with numpy alone."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    return arrays, meta


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("trajectory", Trajectory),
        ("trajectory_batchnorm", Trajectory),
        ("plane", Plane),
        ("loss_grid", LossGrid),
        ("loss_line", LossLine),
        ("curvature_grid", CurvatureGrid),
        ("path_curvature", PathCurvature),
        ("hessian_spectrum", HessianSpectrum),
        ("hessian_trace", HessianTrace),
    ],
)
def test_files_of_version_0_2_load_with_every_value(name, kind):
    path = OLD / f"{name}.npz"
    arrays, meta = raw(path)
    assert meta["kind"] == kind.__name__
    loaded = kind.load(path)
    for key, value in arrays.items():
        if key.startswith("buffer:"):
            np.testing.assert_array_equal(loaded.buffers[key.removeprefix("buffer:")], value)
        else:
            np.testing.assert_array_equal(getattr(loaded, key), value)
    for key, value in meta.items():
        if key in ("kind", "format_version"):
            continue
        if key == "layout":
            assert loaded.layout.to_json() == value
        elif key == "labels":
            assert list(loaded.labels) == value
        else:
            assert same(getattr(loaded, key), value), key
    if kind is LossGrid:
        i, j = np.unravel_index(np.argmin(arrays["loss"]), arrays["loss"].shape)
        assert loaded.loss_min == arrays["loss"][i, j]
        np.testing.assert_array_equal(loaded.argmin, [arrays["xs"][j], arrays["ys"][i]])


def test_a_trajectory_of_version_0_2_puts_its_weights_and_buffers_back():
    import torch

    trajectory = Trajectory.load(OLD / "trajectory_batchnorm.npz")
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU(), torch.nn.Linear(3, 3)
    )
    returned = trajectory.apply_to(model)
    assert returned is model
    np.testing.assert_array_equal(
        torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy(),
        trajectory.params[-1],
    )
    np.testing.assert_array_equal(model[1].running_var.numpy(), trajectory.buffers["1.running_var"])
    assert int(model[1].num_batches_tracked) == int(trajectory.buffers["1.num_batches_tracked"])


def test_a_grid_checkpoint_of_version_0_2_resumes_with_its_values(tmp_path):
    arrays, meta = raw(OLD / "grid_checkpoint.npz")
    store = GridCheckpoint(OLD / "grid_checkpoint.npz", meta["job"], meta["n_points"])
    values, done = store.resume()
    assert done.all()
    np.testing.assert_array_equal(values[:, 0], arrays["values"])
    grid = LossGrid.load(OLD / "loss_grid.npz")
    np.testing.assert_array_equal(values[:, 0], grid.loss.ravel())


def made(kind):
    rng = np.random.default_rng(0)
    if kind is PathLosses:
        true = rng.normal(size=6)
        true[2] = np.nan
        return PathLosses(true, rng.normal(size=6))
    return DecisionRegions(
        rows=np.array([0, 3, 5]),
        classes=rng.integers(0, 3, size=(3, 4, 5)).astype(np.uint8),
        extent=(-1.0, 1.0, -2.0, 2.5),
        points=rng.normal(size=(7, 2)),
        labels=rng.integers(0, 3, size=7),
        n_classes=3,
    )


@pytest.mark.parametrize("kind", [PathLosses, DecisionRegions])
def test_every_result_is_saveable(tmp_path, kind):
    result = made(kind)
    loaded = kind.load(result.save(tmp_path / "r.npz"))
    for field in dataclasses.fields(kind):
        a, b = getattr(result, field.name), getattr(loaded, field.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(b, a)
            assert b.dtype == a.dtype
        else:
            assert b == a


@pytest.mark.parametrize(
    "kind",
    [
        Trajectory,
        Plane,
        LossGrid,
        LossLine,
        CurvatureGrid,
        PathCurvature,
        HessianSpectrum,
        PathLosses,
        DecisionRegions,
    ],
)
def test_results_with_arrays_compare_by_identity(kind):
    """``==`` on array fields would raise: results with arrays compare as objects (a
    ``HessianTrace``, all numbers, compares by value)."""
    assert kind.__eq__ is object.__eq__
