"""``interactive_surface``: the loss surface as a Plotly figure a reader can rotate and zoom, with
the path on it and a step slider, written as one self-contained HTML file (Plotly's script inline,
nothing fetched from the network to view it).

Plotly is optional (``pip install "loss-landscape-anim[interactive]"``) and imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path
from .._validate import check_positive_int
from ..results import LossGrid, Plane, Trajectory

__all__ = ["HTML_DIV_ID", "check_plotly", "interactive_surface", "write_interactive_html"]

_PATH_COLOR = "#ff7f0e"
#: Most positions the step slider offers (spread evenly over the path, first and last kept).
MAX_SLIDER_STEPS = 300


def check_plotly() -> None:
    """Raise ImportError, with what to install, unless plotly can be imported."""
    _plotly()


def _plotly() -> Any:
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise ImportError(
            "interactive_surface needs plotly: pip install 'loss-landscape-anim[interactive]' "
            "(or pip install plotly)"
        ) from None
    return go


def interactive_surface(
    grid: LossGrid,
    *,
    plane: Plane | None = None,
    trajectory: Trajectory | None = None,
    log: bool = True,
    colorscale: str = "Viridis",
    max_steps: int = MAX_SLIDER_STEPS,
    title: str | None = "Loss landscape",
) -> Any:
    """A Plotly figure of the loss surface, with the path on it and a step slider.

    Traces: a ``surface`` of the grid (height and colour log10(loss) when ``log``; the colour bar
    and hover text read in loss values), a ``scatter3d`` of the path with one point per recorded
    row, drawn at the loss of the plane under each point, and a ``scatter3d`` marker of the
    current point, which the slider moves from step to step.

    Args:
        grid: the loss grid.
        plane: the plane of the grid: axis titles, and its path (``plane.path_2d``).
        trajectory: a path to draw instead, projected onto ``plane`` (needs ``plane``); its steps
            and batch losses show in the hover text and the slider.
        log: log scale for the height and colours (linear when a loss is not positive).
        colorscale: a Plotly colour scale name.
        max_steps: the slider offers at most this many positions.
        title: the figure's title.

    Returns:
        A ``plotly.graph_objects.Figure``; :func:`write_interactive_html` (or the figure's
        ``write_html(path, include_plotlyjs=True)``) saves it as one self-contained HTML file.
    """
    go = _plotly()
    from .landscape_plot import path_coordinates
    from .loss_scale import LossScale
    from .surface import path_heights

    if not isinstance(grid, LossGrid):
        raise TypeError(f"Expected grid to be a LossGrid but got {type(grid).__name__}")
    max_steps = check_positive_int(max_steps, "max_steps")
    xy = path_coordinates(plane, trajectory, grid)
    scale = LossScale.of(grid.loss, 2, log)
    if scale is None:
        raise ValueError("The grid has fewer than two distinct finite losses: nothing to draw")
    fig = go.Figure()
    fig.add_trace(_surface_trace(go, grid, scale, colorscale))
    if xy is not None:
        z = path_heights(grid, xy, scale)
        steps = np.asarray(trajectory.steps) if trajectory is not None else np.arange(len(xy))
        loss = 10.0**z if scale.log else z
        fig.add_trace(_path_trace(go, xy, z, steps, loss))
        fig.add_trace(_point_trace(go, xy, z, len(xy) - 1))
        fig.update_layout(sliders=[_slider(xy, z, steps, max_steps)])
    labels = plane.axis_labels() if plane is not None else ("direction 0", "direction 1")
    fig.update_layout(
        title=title,
        scene={
            # seen from a little farther than Plotly's default, so no axis title is cut off
            "camera": {"eye": {"x": 1.45, "y": -1.45, "z": 0.95}},
            "xaxis_title": labels[0],
            "yaxis_title": labels[1],
            "zaxis": {
                "title": "loss (log scale)" if scale.log else "loss",
                "tickvals": scale.height(scale.ticks()).tolist(),
                "ticktext": scale.tick_labels(),
            },
        },
        margin={"l": 0, "r": 0, "t": 40 if title else 10, "b": 0},
        legend={"x": 0.01, "y": 0.99},
    )
    return fig


def _surface_trace(go: Any, grid: LossGrid, scale: Any, colorscale: str) -> Any:
    z = scale.height(grid.loss)
    return go.Surface(
        x=np.asarray(grid.xs),
        y=np.asarray(grid.ys),
        z=z,
        customdata=np.asarray(grid.loss),
        colorscale=colorscale,
        cmin=float(scale.height(scale.low)),
        cmax=float(scale.height(scale.high)),
        colorbar={
            "title": {"text": "loss"},
            "tickvals": scale.height(scale.ticks()).tolist(),
            "ticktext": scale.tick_labels(),
        },
        hovertemplate="x %{x:.3g}<br>y %{y:.3g}<br>loss %{customdata:.4g}<extra>plane</extra>",
        name="loss on the plane",
    )


def _path_trace(go: Any, xy: np.ndarray, z: np.ndarray, steps: np.ndarray, loss: np.ndarray) -> Any:
    return go.Scatter3d(
        x=xy[:, 0],
        y=xy[:, 1],
        z=z,
        mode="lines+markers",
        line={"color": _PATH_COLOR, "width": 5},
        marker={"size": 2, "color": _PATH_COLOR},
        customdata=np.stack([steps, loss], axis=1),
        hovertemplate="step %{customdata[0]}<br>loss on the plane %{customdata[1]:.4g}"
        "<extra>path</extra>",
        name="path",
    )


def _point_trace(go: Any, xy: np.ndarray, z: np.ndarray, k: int) -> Any:
    return go.Scatter3d(
        x=[xy[k, 0]],
        y=[xy[k, 1]],
        z=[z[k]],
        mode="markers",
        marker={"size": 7, "color": _PATH_COLOR, "line": {"color": "black", "width": 2}},
        hoverinfo="skip",
        name="current point",
    )


def _slider(xy: np.ndarray, z: np.ndarray, steps: np.ndarray, max_steps: int) -> dict:
    """A slider whose positions move the current-point trace (trace 2) along the path."""
    rows = np.unique(np.round(np.linspace(0, len(xy) - 1, min(len(xy), max_steps))).astype(int))
    positions = [
        {
            "method": "restyle",
            "label": str(int(steps[k])),
            "args": [
                {"x": [[float(xy[k, 0])]], "y": [[float(xy[k, 1])]], "z": [[float(z[k])]]},
                [2],
            ],
        }
        for k in rows
    ]
    return {
        "active": len(positions) - 1,
        "currentvalue": {"prefix": "step "},
        "pad": {"t": 10},
        "steps": positions,
    }


#: The id of the figure's element in the HTML file: fixed, where Plotly draws a random one, so
#: that the same figure always gives the same file.
HTML_DIV_ID = "loss-landscape"


def write_interactive_html(fig: Any, path: str | os.PathLike) -> Path:
    """Write ``fig`` as one self-contained HTML file (Plotly's script inline), atomically; the
    same figure gives the same bytes."""
    with atomic_path(path) as tmp:
        fig.write_html(
            str(tmp),
            include_plotlyjs=True,
            full_html=True,
            include_mathjax=False,
            div_id=HTML_DIV_ID,
        )
    return Path(path)
