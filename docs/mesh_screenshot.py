"""Regenerates docs/mesh-export.png: the ``.vtp`` file ``export_surface`` writes for the default run
(MLP on spirals), read back with PyVista and drawn with matplotlib, without a display or ParaView.

    python docs/mesh_screenshot.py [output.png]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import matplotlib
import numpy as np
import pyvista
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.tri import Triangulation

from loss_landscape_anim import (
    MLP,
    SpiralsDataModule,
    compute_loss_grid,
    export_surface,
    project,
    train,
)


def main(output: str) -> None:
    data = SpiralsDataModule()
    model = MLP(input_dim=2, num_classes=3)
    trajectory = train(model, data, n_epochs=300, seed=0, progress=False)
    plane = project(trajectory, "pca")
    grid = compute_loss_grid(model, data, plane, resolution=60, progress=False)
    with tempfile.TemporaryDirectory() as folder:
        mesh = pyvista.read(
            export_surface(grid, Path(folder) / "landscape.vtp", plane=plane, log=True)
        )
    points = np.asarray(mesh.points)
    quads = np.asarray(mesh.faces).reshape(-1, 5)[:, 1:]
    triangles = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    path = points[np.asarray(mesh.lines)[1:]]
    surface = Triangulation(points[:, 0], points[:, 1], triangles)
    fig = Figure(figsize=(7.0, 5.0), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection="3d")
    shaded = ax.plot_trisurf(
        surface, points[:, 2], cmap="viridis", linewidth=0.1, edgecolor=(0, 0, 0, 0.15)
    )
    shaded.set_array(np.asarray(mesh.point_data["log10_loss"])[triangles].mean(axis=1))
    ax.computed_zorder = False
    ax.plot(path[:, 0], path[:, 1], path[:, 2] + 0.01, color="#ff7f0e", linewidth=2.2, zorder=10)
    ax.plot(*path[-1], marker="o", color="#ff7f0e", markeredgecolor="k", zorder=11)
    ax.view_init(elev=38, azim=-58)
    ax.set_xlabel("principal component 0")
    ax.set_ylabel("principal component 1")
    ax.set_zlabel("log10 loss")
    ax.set_title(
        f"landscape.vtp read back: {mesh.n_points} points, {len(quads)} quads, path of "
        f"{len(path)} points",
        fontsize=10,
    )
    bar = fig.colorbar(shaded, ax=ax, shrink=0.6, pad=0.1)
    bar.set_label("log10 loss (point field)")
    with matplotlib.rc_context():
        fig.savefig(output)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).with_name("mesh-export.png")))
