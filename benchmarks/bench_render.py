"""Rendering benchmark: ``animate`` (300 frames, 900 x 600 GIF) against a full-redraw reference.

Ours blits: the static parts (contours, colour bar, labels) are drawn once, each frame restores
them and draws only the moving artists; the info text is drawn by Pillow; frames are mapped onto
one fitted palette and written as delta frames. The reference is what a straightforward
implementation does with the SAME figure (built by ``LandscapeFigure``): every artist's
``animated`` flag off, the info rows as ordinary matplotlib ``Text`` artists at the same places,
an update function that sets the same artist data as ``LandscapeFigure.frame``, and matplotlib's
``FuncAnimation(blit=False)`` saved with ``PillowWriter``, which redraws the whole figure for
every frame. Both start from the same trajectory, plane and loss grid (spirals MLP, 300 epochs,
PCA, 100 x 100 grid), computed once before timing; both times include building the figure and
writing the GIF. The middle frame of each GIF is saved as PNG under ``--out`` for a visual check.

    python benchmarks/bench_render.py            # 300 frames, 3 repeats of each
    python benchmarks/bench_render.py --quick    # 100 frames, 1 repeat of each
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matplotlib.animation import FuncAnimation, PillowWriter
from PIL import Image

from loss_landscape_anim import MLP, SpiralsDataModule, animate, compute_loss_grid, project, train
from loss_landscape_anim.render import Style, frame_indices
from loss_landscape_anim.render.animator import path_views
from loss_landscape_anim.render.figure import _TEXT_COLOR, LandscapeFigure
from loss_landscape_anim.results import LossGrid, Plane, Trajectory


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_avg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def spirals_run(epochs: int, resolution: int) -> tuple[Trajectory, Plane, LossGrid]:
    """The default job's first three stages (seeded MLP as in ``loss_landscape_anim``)."""
    data = SpiralsDataModule()
    torch.manual_seed(0)
    model = MLP(2, 3, learning_rate=5e-3)
    trajectory = train(model, data, epochs, seed=0, progress=False)
    plane = project(trajectory)
    trained = MLP(2, 3)
    trained.load_state_dict(trajectory.state_dict())
    grid = compute_loss_grid(trained, data, plane, resolution=resolution, progress=False)
    return trajectory, plane, grid


def ours(trajectory: Trajectory, plane: Plane, grid: LossGrid, path: Path, n_frames: int) -> None:
    animate(trajectory, plane, grid, path, n_frames=n_frames, progress=False)


def reference(
    trajectory: Trajectory, plane: Plane, grid: LossGrid, path: Path, n_frames: int
) -> None:
    """The same figure, redrawn in full every frame by FuncAnimation and saved by PillowWriter."""
    style = Style()
    paths = path_views(trajectory, plane, None, style)
    frames = frame_indices(max(len(p.steps) for p in paths), n_frames)
    figure = LandscapeFigure(paths, grid, plane, style)
    for artist in figure.fig.findobj():
        artist.set_animated(False)
    texts = info_text_artists(figure, style)

    def update(i: int) -> list:
        t = int(frames[i])
        for p, line, point in zip(figure.paths, figure.lines, figure.points, strict=True):
            k = min(t, len(p.steps) - 1)
            line.set_data(p.xy[: k + 1, 0], p.xy[: k + 1, 1])
            point.set_data(p.xy[k : k + 1, 0], p.xy[k : k + 1, 1])
        step = figure.paths[0].steps[min(t, len(figure.paths[0].steps) - 1)]
        for line, steps, values in figure.curves:
            k = int(np.searchsorted(steps, step, side="right"))
            line.set_data(steps[:k], values[:k])
        for text, row in zip(texts, figure._info_lines(t), strict=True):
            text.set_text(row)
        return []

    anim = FuncAnimation(figure.fig, update, frames=len(frames), blit=False, repeat=False)
    anim.save(path, writer=PillowWriter(fps=15))


def info_text_artists(figure: LandscapeFigure, style: Style) -> list:
    """Matplotlib Text artists at the anchors where ``_TextRows`` draws the info rows."""
    rows = figure.info_rows
    assert rows is not None
    ax = figure.side["info"]
    height = figure.canvas.get_width_height()[1]
    display = [(x + rows.left, height - (y + rows.top)) for x, y in rows.anchors]
    anchors = ax.transAxes.inverted().transform(np.asarray(display, dtype=float))
    return [
        ax.text(
            x,
            y,
            "",
            transform=ax.transAxes,
            ha="left",
            va="center",
            family="monospace",
            fontsize=style.text_size,
            color=_TEXT_COLOR,
        )
        for x, y in anchors
    ]


def gif_frame(path: Path, index: int) -> tuple[Image.Image, int]:
    """Frame ``index`` of a GIF as RGB, composited as a viewer shows it, and the frame count."""
    with Image.open(path) as im:
        n = im.n_frames
        im.seek(index)
        return im.convert("RGB"), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 frames, 1 repeat of each")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=None, help="default 300 (--quick: 100)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-render"))
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    n_frames = args.frames or (100 if args.quick else 300)
    args.out.mkdir(parents=True, exist_ok=True)
    load_start = load_avg()

    trajectory, plane, grid = spirals_run(300, 100)
    gifs = {"ours": args.out / "ours.gif", "reference": args.out / "reference.gif"}
    seconds = {
        "ours": median_time(lambda: ours(trajectory, plane, grid, gifs["ours"], n_frames), repeats),
        "reference": median_time(
            lambda: reference(trajectory, plane, grid, gifs["reference"], n_frames), repeats
        ),
    }
    middle = n_frames // 2
    pngs, counts, images = {}, {}, {}
    for name, gif in gifs.items():
        images[name], counts[name] = gif_frame(gif, middle)
        pngs[name] = args.out / f"{name}-frame{middle}.png"
        images[name].save(pngs[name])
    a, b = (np.asarray(images[k], dtype=np.int16) for k in ("ours", "reference"))
    differs = np.abs(a - b).max(axis=2) > 48
    result = {
        "frames": n_frames,
        "frames_in_gif": counts,
        "size": list(images["ours"].size),
        "repeats": repeats,
        "seconds": seconds,
        "frames_per_s": {k: n_frames / s for k, s in seconds.items()},
        "speedup": seconds["reference"] / seconds["ours"],
        "gif_bytes": {k: p.stat().st_size for k, p in gifs.items()},
        "middle_frame_png": {k: str(p) for k, p in pngs.items()},
        "middle_frame_pixels_differing": float(differs.mean()),
        "load_start": load_start,
        "load_end": load_avg(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{n_frames} frames at {result['size'][0]}x{result['size'][1]}, medians of {repeats}; "
        f"load average at start {load_start}, at end {result['load_end']}"
    )
    print(f"{'':<10} {'seconds':>8} {'frames/s':>9} {'GIF MB':>7} {'frames':>7}")
    for name in ("ours", "reference"):
        print(
            f"{name:<10} {seconds[name]:>8.2f} {result['frames_per_s'][name]:>9.1f} "
            f"{result['gif_bytes'][name] / 1e6:>7.2f} {counts[name]:>7}"
        )
    print(f"speedup (reference / ours): {result['speedup']:.1f}x")
    print(
        f"frame {middle} saved as {pngs['ours']} and {pngs['reference']}; "
        f"{100 * result['middle_frame_pixels_differing']:.2f}% of pixels differ by more than 48 "
        "in some channel"
    )


if __name__ == "__main__":
    main()
