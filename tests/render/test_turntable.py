"""turntable: a grid with no path as a turning 3D surface (or a still contour picture); and the
3D animation without side panels, which it shares a need with."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image, ImageSequence

from loss_landscape_anim import LossGrid, Plane, Style, Trajectory, animate
from loss_landscape_anim.params.layout import ParamLayout
from loss_landscape_anim.render.turntable import turntable


def valley() -> LossGrid:
    xs, ys = np.linspace(-1, 1, 15), np.linspace(-1, 1, 15)
    X, Y = np.meshgrid(xs, ys)
    return LossGrid.from_values(xs, ys, 0.5 + (X - 0.3) ** 2 + 2 * (Y + 0.2) ** 2)


def frames_of(data: bytes) -> list[np.ndarray]:
    with Image.open(io.BytesIO(data)) as gif:
        return [np.asarray(f.convert("RGB")).copy() for f in ImageSequence.Iterator(gif)]


def orange(frame: np.ndarray) -> int:
    """Pixels of the minimum's star colour (#ff7f0e), within palette rounding."""
    return int((np.abs(frame.astype(int) - [255, 127, 14]).sum(axis=2) < 30).sum())


def test_the_camera_turns_around_the_surface_and_its_minimum(tmp_path):
    animation = turntable(valley(), tmp_path / "turn.gif", n_frames=4, progress=False)
    assert animation.path == tmp_path / "turn.gif" and animation.n_frames == 4
    frames = frames_of(animation.read_bytes())
    assert len(frames) == 4 and frames[0].shape == (480, 640, 3)
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(frames))
    assert all(orange(f) > 20 for f in frames)  # the star at the minimum, every frame


def test_contour_is_one_still_frame():
    animation = turntable(valley(), None, view="contour", format="gif", progress=False)
    assert animation.n_frames == 1 and len(frames_of(animation.data)) == 1


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Expected view to be one of 'contour', 'surface'"):
        turntable(valley(), None, view="side", format="gif")
    with pytest.raises(ValueError, match="Expected n_frames to be a positive integer but got 0"):
        turntable(valley(), None, n_frames=0, format="gif")
    assert not list(tmp_path.iterdir())


def test_the_3d_animation_without_side_panels():
    grid = valley()
    path = np.array([[-0.8, 0.7], [-0.2, 0.3], [0.3, -0.2]])
    trajectory = Trajectory(
        path,
        np.array([3.0, 1.5, 0.5]),
        np.full(3, np.nan),
        np.arange(3),
        ParamLayout(("w",), ((2,),)),
    )
    plane = Plane(np.zeros(2), np.eye(2), path, np.zeros(3))
    style = Style(figsize=(4.0, 3.0), dpi=50, panels=False)
    animation = animate(
        trajectory, plane, grid, None, format="gif", style=style, view="surface", progress=False
    )
    assert animation.n_frames == 3 and animation.size == (200, 150)
