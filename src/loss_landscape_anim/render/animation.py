"""``Animation``: a rendered animation (the file or the bytes) that displays itself in Jupyter."""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Animation"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Animation:
    """A rendered animation: the file written (or the bytes, when not written) and its facts.

    In Jupyter it displays itself inline; :meth:`show` displays it from a script. ``fps`` is the
    rate written: a GIF's delays (whole hundredths of a second) alternate so that their mean is
    1/``fps``.
    """

    path: Path | None
    format: str
    n_frames: int
    fps: int
    size: tuple[int, int]
    data: bytes | None = field(default=None, repr=False)

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def _repr_html_(self) -> str:
        payload = base64.b64encode(self.read_bytes()).decode()
        if self.format == "gif":
            return f'<img src="data:image/gif;base64,{payload}" alt="loss landscape animation"/>'
        if self.format == "mp4":
            return f'<video controls loop src="data:video/mp4;base64,{payload}"></video>'
        return self.read_bytes().decode()

    def show(self) -> None:
        """Display inline in Jupyter/IPython; elsewhere open an interactive matplotlib window
        when the backend has one, else log where the file is."""
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            shell = None
        if shell is not None and getattr(shell, "kernel", None) is not None:
            from IPython.display import HTML, display

            display(HTML(self._repr_html_()))
            return
        _play_in_window(self)


def _play_in_window(animation: Animation) -> None:
    import matplotlib

    backend = matplotlib.get_backend().lower()
    if backend in ("agg", "pdf", "ps", "svg", "cairo", "template") or "inline" in backend:
        logger.warning(
            "Cannot show the animation: matplotlib's backend %r has no window. Write it to a file "
            "(output_to_file=True) or run in Jupyter.",
            backend,
        )
        return
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation
    from PIL import Image, ImageSequence

    with Image.open(io.BytesIO(animation.read_bytes())) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    fig = plt.figure(figsize=(animation.size[0] / 100, animation.size[1] / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    image = ax.imshow(frames[0])

    def update(k: int) -> list:
        image.set_data(frames[k])
        return [image]

    player = FuncAnimation(
        fig,
        update,
        frames=len(frames),
        interval=1000 / animation.fps,
        blit=True,
    )
    plt.show()
    del player
