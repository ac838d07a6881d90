"""compare_optimizers: shared initial weights, one plane through the centre's optimum, one grid
covering every path; and a diverging run that still animates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from loss_landscape_anim import (
    DivergenceWarning,
    SpiralsDataModule,
    compare_optimizers,
    loss_landscape_anim,
)
from loss_landscape_anim.cli import main

OPTIMIZERS = ["adam", "sgd", "rmsprop"]


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "compare.gif"
    result = compare_optimizers(
        OPTIMIZERS,
        12,
        center="rmsprop",
        seed=0,
        output_filename=out,
        learning_rates={"sgd": 0.5},
        resolution=8,
        datamodule=SpiralsDataModule(n_per_class=40),
        progress=False,
    )
    return result, out


def test_every_optimizer_starts_from_the_same_weights(comparison) -> None:
    result, _ = comparison
    first_rows = [np.asarray(t.params[0]) for t in result.trajectories.values()]
    for row in first_rows[1:]:
        np.testing.assert_array_equal(row, first_rows[0])
    finals = [np.asarray(t.params[-1]) for t in result.trajectories.values()]
    assert not np.allclose(finals[0], finals[1])  # they did train differently


def test_the_plane_passes_through_the_centres_final_weights(comparison) -> None:
    result, _ = comparison
    centre = result.trajectories["rmsprop"]
    assert result.center == "rmsprop"
    np.testing.assert_array_equal(result.plane.origin, centre.params[-1].astype(np.float64))
    # The centre's final row is the origin: its offset, and every sum over it, is exactly 0.
    np.testing.assert_array_equal(result.planes["rmsprop"].path_2d[-1], 0.0)
    for name, plane in result.planes.items():
        np.testing.assert_array_equal(plane.directions, result.plane.directions)
        assert plane.path_2d.shape == (len(result.trajectories[name]), 2)


def test_the_grid_covers_every_path(comparison) -> None:
    result, _ = comparison
    grid = result.grid
    for plane in result.planes.values():
        assert grid.xs[0] <= plane.path_2d[:, 0].min() and plane.path_2d[:, 0].max() <= grid.xs[-1]
        assert grid.ys[0] <= plane.path_2d[:, 1].min() and plane.path_2d[:, 1].max() <= grid.ys[-1]


def test_off_plane_distance_of_each_path_against_a_direct_computation(comparison) -> None:
    result, _ = comparison
    for name, trajectory in result.trajectories.items():
        plane = result.planes[name]
        offsets = np.asarray(trajectory.params, dtype=np.float64) - plane.origin
        residual = offsets - plane.path_2d @ plane.directions
        np.testing.assert_allclose(
            plane.off_plane_distance, np.linalg.norm(residual, axis=1), rtol=1e-6, atol=1e-6
        )


def test_the_animation_draws_every_path_in_its_own_colour(comparison) -> None:
    result, out = comparison
    assert result.animation is not None and result.animation.path == out
    with Image.open(out) as gif:
        assert gif.size == (900, 600)
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB")).astype(int)
    from loss_landscape_anim.render import Style

    for color in Style().path_colors[: len(OPTIMIZERS)]:
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
        close = np.abs(last - rgb).sum(axis=2) <= 12
        assert close.sum() > 30, f"path colour {color} barely appears"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"center": "adagrad"},
            "Expected center to be one of the compared optimizers 'adam', 'sgd' but got 'adagrad'",
        ),
        ({"optimizers": ["adam", "lbfgs"]}, "Expected optimizers to be one of"),
        (
            {"learning_rates": {"adagrad": 0.1}},
            "Expected a key of learning_rates to be one of the compared optimizers",
        ),
        ({"reduction_method": "tsne"}, "Expected reduction_method to be one of"),
        (
            {"optimizers": ["adam", "ADAM"]},
            "Expected each optimizer once but optimizers names 'adam' and 'adam'",
        ),
        (
            {"optimizers": ["adam", torch.optim.Adam]},
            "Expected each optimizer once but optimizers names 'adam' and 'Adam'",
        ),
        ({"learning_rates": {"sgd": 0.1, "SGD": 0.2}}, "learning_rates gives 'sgd' twice"),
        ({"n_frames": 0}, "Expected n_frames to be a positive integer but got 0"),
        ({"giffps": 60}, "Expected giffps to be at most 50 for a GIF but got 60"),
        ({"custom_directions": (np.ones(303), np.arange(303.0))}, "but reduction_method is 'pca'"),
        ({"reduction_method": "custom"}, "needs custom_directions"),
        (
            {"datamodule": SpiralsDataModule(), "batch_size": 7},
            "batch_size=7 applies to the default spirals data only",
        ),
        (
            {"output_filename": "DIR"},
            "Expected output_filename to be a file path but .* is a directory",
        ),
    ],
)
def test_bad_arguments_fail_before_any_training_or_file(tmp_path, monkeypatch, kwargs, match):
    def no_training(*args, **kwargs):
        raise AssertionError("trained before validating")

    monkeypatch.setattr("loss_landscape_anim.pipeline.compare.train", no_training)
    (tmp_path / "DIR.gif").mkdir()
    arguments = {"optimizers": ["adam", "sgd"], "output_filename": tmp_path / "c.gif", **kwargs}
    if arguments["output_filename"] == "DIR":
        arguments["output_filename"] = tmp_path / "DIR.gif"
    optimizers = arguments.pop("optimizers")
    with pytest.raises(ValueError, match=match):
        compare_optimizers(optimizers, 5, progress=False, **arguments)
    assert list(tmp_path.iterdir()) == [tmp_path / "DIR.gif"]
    assert list((tmp_path / "DIR.gif").iterdir()) == []


def test_names_are_matched_ignoring_case(tmp_path) -> None:
    result = compare_optimizers(
        ["Adam", "sgd"],
        2,
        center="ADAM",
        learning_rates={"SGD": 0.5},
        seed=0,
        resolution=3,
        output_filename=None,
        progress=False,
    )
    assert result.center == "adam"
    assert list(result.trajectories) == ["adam", "sgd"]
    assert result.trajectories["sgd"].learning_rate == 0.5


def test_compare_from_the_command_line(tmp_path) -> None:
    out = tmp_path / "cmp.gif"
    code = main(
        [
            "--compare",
            "adam,sgd",
            "--center",
            "sgd",
            "--epochs",
            "4",
            "--resolution",
            "6",
            "--frames",
            "4",
            "--no-progress",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 4


def test_a_diverging_run_still_animates_and_warns(tmp_path) -> None:
    out = tmp_path / "diverged.gif"
    with pytest.warns(DivergenceWarning, match="diverged to non-finite values"):
        loss_landscape_anim(
            30,
            optimizer="sgd",
            learning_rate=1e12,
            seed=0,
            resolution=8,
            output_filename=out,
            model_dirpath=tmp_path / "ckpt",
            progress=False,
        )
    with Image.open(out) as gif:
        assert 1 <= gif.n_frames < 31  # the path stops where values stopped being finite


def test_barriers_between_each_pair_of_final_weights(comparison) -> None:
    from loss_landscape_anim import MLP, loss_along_line
    from loss_landscape_anim.pipeline.compare import BARRIER_POINTS

    result, _ = comparison
    assert set(result.barriers) == {("adam", "sgd"), ("adam", "rmsprop"), ("sgd", "rmsprop")}
    architecture = MLP(2, 3)  # the default model's; the line ignores its own weights
    for (a, b), barrier in result.barriers.items():
        line = loss_along_line(
            architecture,
            SpiralsDataModule(n_per_class=40),
            result.trajectories[a].final_params,
            result.trajectories[b].final_params,
            n_points=BARRIER_POINTS,
        )
        assert np.isfinite(barrier)
        assert barrier == line.barrier
