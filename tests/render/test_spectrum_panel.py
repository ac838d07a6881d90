"""The animation's curvature panel as a spectrum view: with densities, the heat strip of the path's
spectrum, revealed up to each frame's step by a moving mask, with lambda_max growing over it and
2/eta for SGD."""

from __future__ import annotations

import numpy as np
from matplotlib.collections import QuadMesh
from PIL import Image

from loss_landscape_anim import LossGrid, PathCurvature, Plane, Trajectory, animate
from loss_landscape_anim.params.layout import ParamLayout
from loss_landscape_anim.render.animator import path_views
from loss_landscape_anim.render.figure import LandscapeFigure
from loss_landscape_anim.render.spectrum import spectrum_image
from loss_landscape_anim.render.style import Style

T = 11


def path() -> tuple[Trajectory, Plane]:
    rng = np.random.default_rng(0)
    params = np.cumsum(rng.normal(size=(T, 4)), axis=0).astype(np.float32)
    trajectory = Trajectory(
        params,
        np.linspace(2, 1, T),
        np.full(T, 0.5),
        np.arange(T) * 2,
        ParamLayout(("w",), ((4,),)),
        "sgd",
        0.5,
    )
    xy = np.stack([np.linspace(-1, 0, T), np.linspace(-2, 0, T)], axis=1)
    plane = Plane(params[-1].astype(np.float64), np.eye(2, 4), xy, np.zeros(T))
    return trajectory, plane.with_path(trajectory)  # the path is the trajectory's projection


def spectrum(trajectory: Trajectory) -> PathCurvature:
    rows = np.array([0, 5, 10])
    # Each row: a bulk near 0 and one outlier rising 1 -> 3 (2/eta = 4 sits above).
    nodes = np.stack([[[-0.1, 0.0, 0.1, 1.0 + 0.2 * r]] * 2 for r in rows])
    weights = np.tile([0.2, 0.5, 0.2, 0.1], (3, 2, 1))
    return PathCurvature(
        rows,
        trajectory.steps[rows],
        1.0 + 0.2 * rows,
        np.full(3, -0.1),
        "sgd",
        0.5,
        density_nodes=nodes,
        density_weights=weights,
        n_params=4,
    )


def loss_grid() -> LossGrid:
    xs, ys = np.linspace(-1, 1, 9), np.linspace(-2, 2, 9)
    XX, YY = np.meshgrid(xs, ys)
    return LossGrid.from_values(xs, ys, 1.0 + XX**2 + 0.5 * YY**2)


def test_the_strip_is_revealed_with_the_frames():
    trajectory, plane = path()
    curvature = spectrum(trajectory)
    style = Style()
    views = path_views(trajectory, plane, None, style)
    figure = LandscapeFigure(views, loss_grid(), plane, style, curvature={views[0].name: curvature})
    ax = figure.side["curvature"]
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    _, image, _ = spectrum_image(curvature, top=4.0 * 1.05)  # the strip reaches 2 / eta
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(image.shape), image)
    (mask,) = ax.patches
    assert ax.get_ylim()[1] >= 4.0  # 2 / eta is in view
    (threshold,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    np.testing.assert_array_equal(threshold.get_ydata(), [4.0, 4.0])
    (top,) = [c[0] for c in figure.curves if c[0].axes is ax]
    figure.frame(0)
    assert mask.get_x() == 0 and mask.get_width() == 20  # all hidden at step 0
    figure.frame(5)  # step 10: the first two rows are shown
    assert mask.get_x() == 10 and mask.get_width() == 10
    np.testing.assert_array_equal(top.get_ydata(), [1.0, 2.0])
    figure.frame(T - 1)
    assert mask.get_width() == 0


def test_an_animation_with_the_spectrum_panel_writes_frames_that_differ(tmp_path):
    trajectory, plane = path()
    out = tmp_path / "s.gif"
    animate(
        trajectory,
        plane,
        loss_grid(),
        out,
        curvature=spectrum(trajectory),
        n_frames=3,
        progress=False,
    )
    with Image.open(out) as im:
        assert im.n_frames == 3
        first = np.asarray(im.convert("RGB"))
        im.seek(2)
        last = np.asarray(im.convert("RGB"))
    # The panel's column (right of centre, lower half) changes as the strip is revealed.
    h, w = first.shape[:2]
    panel = (slice(h // 2, h), slice(w * 6 // 10, w))
    assert (first[panel] != last[panel]).any(axis=2).mean() > 0.05
