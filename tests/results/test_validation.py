"""Every result type checks itself when built, so that an inconsistent result never exists: built
by hand, it raises ``ValueError``/``TypeError`` naming the field; loaded from a damaged or
inconsistent file, ``IncompatibleFileError`` naming the file and the fault."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from loss_landscape_anim._io import save_npz
from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.params.layout import ParamLayout
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

LAYOUT = ParamLayout(("w", "b"), ((2, 3), (2,)))  # 8 parameters
RNG = np.random.default_rng(0)


def trajectory_fields(T: int = 4) -> dict:
    return {
        "params": RNG.normal(size=(T, 8)).astype(np.float32),
        "loss": np.linspace(2.0, 1.0, T),
        "accuracy": np.linspace(0.2, 0.8, T),
        "steps": np.arange(T),
        "layout": LAYOUT,
    }


def plane_fields(T: int = 4, P: int = 8) -> dict:
    return {
        "origin": RNG.normal(size=P),
        "directions": np.eye(2, P),
        "path_2d": RNG.normal(size=(T, 2)),
        "off_plane_distance": np.abs(RNG.normal(size=T)),
    }


def grid_fields(n: int = 5) -> dict:
    xs, ys = np.linspace(-1, 1, n), np.linspace(-2, 2, n + 1)
    return {"xs": xs, "ys": ys, "loss": 1 + np.add.outer(ys**2, xs**2)}


def ok_trajectory() -> None:
    Trajectory(**trajectory_fields())


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"params": np.full((4, 8), "a")}, TypeError, "Expected params to be an array of floats"),
        ({"params": [[0.0] * 8] * 4}, TypeError, "Expected params to be a numpy array"),
        (
            {"params": np.where(np.eye(4, 8) > 0, np.nan, 0.0)},
            ValueError,
            r"Expected params to be finite but it holds nan at index \(0, 0\)",
        ),
        ({"steps": np.array([0.0, 1, 2, 3])}, TypeError, "Expected steps to be an array of ints"),
        ({"steps": np.array([0, 2, 2, 3])}, ValueError, "Expected steps to be strictly increasing"),
        ({"steps": np.array([-1, 0, 1, 2])}, ValueError, "Expected steps >= 0"),
        ({"accuracy": np.array([0, 0.5, 1.5, 1])}, ValueError, r"Expected accuracy in \[0, 1\]"),
        ({"loss": np.array(["a"] * 4)}, TypeError, "Expected loss to be an array of floats"),
        ({"learning_rate": -1.0}, ValueError, "Expected learning_rate >= 0 or NaN but got -1.0"),
        ({"learning_rate": "0.1"}, ValueError, "Expected learning_rate >= 0 or NaN but got '0.1'"),
        ({"diverged": "no"}, TypeError, "Expected diverged to be True or False but got 'no'"),
        ({"optimizer": 3}, TypeError, "Expected optimizer to be a string but got 3"),
        ({"buffers": {"m": [1.0]}}, TypeError, "Expected buffers to be a dict of names"),
        ({"layout": {"names": ["w"]}}, TypeError, "Expected layout to be a ParamLayout"),
    ],
)
def test_a_trajectory_refuses_inconsistent_fields(change, error, match) -> None:
    with pytest.raises(error, match=match):
        Trajectory(**{**trajectory_fields(), **change})


def test_a_trajectory_keeps_nan_loss_and_accuracy_where_not_measured() -> None:
    fields = trajectory_fields()
    fields["loss"][1] = fields["accuracy"][2] = np.nan
    t = Trajectory(**fields, learning_rate=np.float32(0.5), diverged=np.bool_(True))
    assert np.isnan(t.loss[1]) and np.isnan(t.accuracy[2])
    assert (type(t.learning_rate), type(t.diverged)) == (float, bool)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"directions": np.eye(1, 8)}, r"Expected directions of shape \(2, 8\) but got \(1, 8\)"),
        ({"directions": np.zeros((2, 8))}, r"Expected directions\[0\] to be non-zero"),
        ({"directions": np.ones((2, 8))}, "they are parallel"),
        ({"origin": np.full(8, np.inf)}, "Expected origin to be finite"),
        ({"path_2d": np.zeros((4, 3))}, r"Expected path_2d of shape \(n, 2\)"),
        ({"path_2d": np.zeros((0, 2)), "off_plane_distance": np.zeros(0)}, "at least one point"),
        ({"off_plane_distance": np.full(4, -1.0)}, "Expected off_plane_distance >= 0"),
        ({"explained_variance": np.array([0.5, 1.5])}, r"explained_variance in \[0, 1\]"),
    ],
)
def test_a_plane_refuses_inconsistent_fields(change, match) -> None:
    with pytest.raises(ValueError, match=match):
        Plane(**{**plane_fields(), **change})


def test_axis_labels_name_a_completing_random_direction() -> None:
    plane = Plane(**plane_fields(), explained_variance=np.array([1.0, 0.0]), method="pca")
    assert plane.axis_labels() == (
        "principal component 0, 100.0%",
        "random direction 1 (the path has no variance left)",
    )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"loss": np.ones((3, 8))}, r"Expected loss of shape \(6, 5\) but got \(3, 8\)"),
        ({"xs": np.array([0.0, 2, 1, 3, 4])}, "Expected xs to be strictly increasing"),
        ({"ys": np.array([0.0])}, "Expected loss of shape"),
        ({"xs": np.array([0.0, 1, 2, 3, np.nan])}, "Expected xs to be finite"),
    ],
)
def test_a_grid_refuses_inconsistent_fields(change, match) -> None:
    with pytest.raises(ValueError, match=match):
        LossGrid.from_values(**{**grid_fields(), **change})


def test_a_grid_checks_its_minimum_and_provenance() -> None:
    grid = LossGrid.from_values(**grid_fields(), margin=0.3, n_examples=np.int64(7))
    assert grid.n_examples == 7 and type(grid.n_examples) is int
    with pytest.raises(ValueError, match="Expected loss_min to be the smallest finite loss"):
        LossGrid(grid.xs, grid.ys, grid.loss, 0.5, grid.argmin)
    with pytest.raises(ValueError, match="Expected margin to be None or >= 0"):
        LossGrid.from_values(**grid_fields(), margin=-1)
    with pytest.raises(TypeError, match="Expected n_examples to be None or an integer"):
        LossGrid.from_values(**grid_fields(), n_examples=2.5)
    with pytest.raises(TypeError, match="Expected precision to be None or a string"):
        LossGrid.from_values(**grid_fields(), precision=["float32"])


def test_path_losses_and_decision_regions_check_shapes() -> None:
    with pytest.raises(ValueError, match=r"Expected projected of shape \(3,\) but got \(2,\)"):
        PathLosses(np.zeros(3), np.zeros(2))
    fields = {
        "rows": np.array([0, 3]),
        "classes": np.zeros((2, 4, 4), np.uint8),
        "extent": (0.0, 1.0, 0.0, 1.0),
        "points": np.zeros((5, 2)),
        "labels": np.zeros(5, np.int64),
        "n_classes": 2,
    }
    assert DecisionRegions(**fields).extent == (0.0, 1.0, 0.0, 1.0)
    for change, match in (
        ({"classes": np.full((2, 4, 4), 2, np.uint8)}, r"Expected classes in \[0, 1\]"),
        ({"extent": (1.0, 0.0, 0.0, 1.0)}, "Expected extent"),
        ({"labels": np.zeros(4, np.int64)}, r"Expected labels of shape \(5,\)"),
        ({"rows": np.array([3, 0])}, "Expected rows to be strictly increasing"),
        ({"n_classes": 0}, "Expected n_classes to be a positive integer"),
    ):
        with pytest.raises((ValueError, TypeError), match=match):
            DecisionRegions(**{**fields, **change})


# -- inconsistent files are refused at load, naming the file ---------------------------------


def refused(path: Path, fault: str) -> re.Pattern:
    return re.compile(re.escape(f"{str(path)!r} is damaged or inconsistent: ") + ".*" + fault)


def test_a_grid_file_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    path = save_npz(
        tmp_path / "g.npz",
        "LossGrid",
        {"xs": np.linspace(0, 1, 8), "ys": np.linspace(0, 1, 8), "loss": np.ones((3, 8))},
        {},
    )
    with pytest.raises(IncompatibleFileError, match=refused(path, r"\(8, 8\) but got \(3, 8\)")):
        LossGrid.load(path)


def test_a_plane_file_with_one_direction_is_refused(tmp_path: Path) -> None:
    fields = {**plane_fields(), "directions": np.eye(1, 8)}
    path = save_npz(tmp_path / "p.npz", "Plane", fields, {"method": "pca"})
    with pytest.raises(IncompatibleFileError, match=refused(path, r"\(2, 8\) but got \(1, 8\)")):
        Plane.load(path)
    path = save_npz(tmp_path / "q.npz", "Plane", plane_fields(), {"method": ["pca"]})
    with pytest.raises(IncompatibleFileError, match=refused(path, "method to be a string")):
        Plane.load(path)


@pytest.mark.parametrize(
    ("change", "meta", "fault"),
    [
        ({"params": np.full((4, 8), "abc")}, {}, "params to be an array of floats"),
        ({"params": np.full((4, 8), np.nan)}, {}, "params to be finite but it holds nan"),
        ({}, {"layout": ["w", "b"]}, "Expected a layout"),
        ({}, {"layout": {"names": ["w"], "shapes": [[2, 3], [2]]}}, "one shape .* per name"),
        ({}, {"layout": {"names": ["w", "b"], "shapes": [[2, "3"], [2]]}}, "one shape"),
        ({}, {"learning_rate": [0.1]}, "learning_rate >= 0 or NaN"),
    ],
)
def test_an_inconsistent_trajectory_file_is_refused(tmp_path: Path, change, meta, fault) -> None:
    fields = {**trajectory_fields(), **change}
    layout = fields.pop("layout")
    path = save_npz(tmp_path / "t.npz", "Trajectory", fields, {"layout": layout.to_json(), **meta})
    with pytest.raises(IncompatibleFileError, match=refused(path, fault)):
        Trajectory.load(path)


def test_a_trajectory_file_without_its_layout_is_refused(tmp_path: Path) -> None:
    fields = trajectory_fields()
    fields.pop("layout")
    path = save_npz(tmp_path / "t.npz", "Trajectory", fields, {})
    with pytest.raises(IncompatibleFileError, match="lacks metadata 'layout'"):
        Trajectory.load(path)
    path = save_npz(tmp_path / "u.npz", "Trajectory", {"params": fields["params"]}, {})
    with pytest.raises(IncompatibleFileError, match="lacks array 'loss', array 'accuracy'"):
        Trajectory.load(path)


def test_a_truncated_trajectory_file_is_refused(tmp_path: Path) -> None:
    path = Trajectory(**trajectory_fields()).save(tmp_path / "t.npz")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(IncompatibleFileError, match=refused(path, "File is not a zip file")):
        Trajectory.load(path)


def curvature_grid_fields(n: int = 4) -> dict:
    xs, ys = np.linspace(-1, 1, n), np.linspace(0, 2, n + 1)
    return {
        "xs": xs,
        "ys": ys,
        "lambda_max": np.ones((n + 1, n)),
        "lambda_min": -np.ones((n + 1, n)),
    }


def path_curvature_fields(T: int = 3) -> dict:
    return {
        "rows": np.arange(T),
        "steps": np.arange(T) * 2,
        "lambda_max": np.ones(T),
        "lambda_min": np.zeros(T),
    }


@pytest.mark.parametrize(
    ("kind", "fields", "error", "match"),
    [
        (
            CurvatureGrid,
            {"lambda_max": np.ones((4, 4))},
            ValueError,
            r"lambda_max of shape \(5, 4\)",
        ),
        (CurvatureGrid, {"xs": np.array([0.0, 2.0, 1.0, 3.0])}, ValueError, "xs to be strictly"),
        (CurvatureGrid, {"n_products": -1}, ValueError, "n_products to be None or >= 0"),
        (CurvatureGrid, {"margin": -0.5}, ValueError, "margin to be None or >= 0"),
        (CurvatureGrid, {"lambda_min": np.full((5, 4), np.inf)}, ValueError, "lambda_min to be"),
        (PathCurvature, {"steps": np.arange(4)}, ValueError, r"steps of shape \(3,\)"),
        (PathCurvature, {"rows": np.array([0, 2, 1])}, ValueError, "rows to be strictly"),
        (PathCurvature, {"rows": np.zeros(3)}, TypeError, "rows to be an array of ints"),
        (PathCurvature, {"learning_rate": "fast"}, TypeError, "learning_rate to be a number"),
        (HessianSpectrum, {"smallest": np.zeros(3)}, ValueError, r"smallest of shape \(2,\)"),
        (HessianSpectrum, {"largest": np.array([1.0, 2.0])}, ValueError, "largest descending"),
        (HessianSpectrum, {"largest_vectors": np.ones((3, 5))}, ValueError, "largest_vectors of"),
        (HessianTrace, {"stderr": -1.0}, ValueError, "stderr to be >= 0"),
        (HessianTrace, {"n_samples": 0}, ValueError, "n_samples to be None or >= 1"),
        (HessianTrace, {"estimate": "big"}, TypeError, "estimate to be a number"),
        (LossLine, {"accuracy": np.ones(4)}, ValueError, r"accuracy of shape \(5,\)"),
        (LossLine, {"labels": ("a", "b", "c")}, ValueError, "labels to be a pair"),
        (LossLine, {"alphas": np.array([0.0, 0.5, 0.25, 0.75, 1.0])}, ValueError, "strictly"),
    ],
)
def test_curvature_and_line_results_check_themselves(kind, fields, error, match):
    base = {
        CurvatureGrid: curvature_grid_fields(),
        PathCurvature: path_curvature_fields(),
        HessianSpectrum: {"largest": np.array([2.0, 1.0]), "smallest": np.array([-1.0, 0.0])},
        HessianTrace: {"estimate": 3.0, "stderr": 0.1, "n_samples": 10},
        LossLine: {
            "alphas": np.linspace(0, 1, 5),
            "loss": np.linspace(1, 2, 5),
            "accuracy": np.full(5, np.nan),
        },
    }[kind]
    kind(**base)  # the base is valid
    with pytest.raises(error, match=match):
        kind(**{**base, **fields})
