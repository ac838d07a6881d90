"""Rows of text drawn straight into frame pixels with Pillow (matplotlib's text layout per frame
cost half the frame time)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

__all__ = ["TextRows"]


class TextRows:
    """Lines of monospace text that change every frame, drawn with Pillow straight into the
    frame's pixels: a fraction of the cost of matplotlib laying out and rasterising them anew each
    frame. Anchors are (x, y) in ``ax``'s axes coordinates, each the left middle of a line."""

    def __init__(
        self, fig: Figure, ax: Any, anchors: list[tuple[float, float]], size_pt: float, color: str
    ):
        from matplotlib.font_manager import FontProperties, findfont
        from PIL import ImageFont

        path = findfont(FontProperties(family="monospace"))
        self.font = ImageFont.truetype(path, size=max(1, round(size_pt * fig.dpi / 72)))
        self.color = (*(round(255 * c) for c in to_rgb(color)), 255)
        width, height = (int(v) for v in fig.canvas.get_width_height())
        box = ax.get_window_extent()
        pad = int(size_pt * fig.dpi / 72)
        self.top = max(0, int(height - box.y1) - pad)
        self.bottom = min(height, int(np.ceil(height - box.y0)) + pad)
        self.left = max(0, int(box.x0) - pad)
        self.right = width
        display = ax.transAxes.transform(np.asarray(anchors, dtype=float))
        self.anchors = [(x - self.left, height - y - self.top) for x, y in display]

    def draw(self, frame: np.ndarray, lines: list[str]) -> None:
        """Write ``lines`` into ``frame`` (H, W, 4), in place."""
        from PIL import Image, ImageDraw

        region = Image.fromarray(frame[self.top : self.bottom, self.left : self.right])
        draw = ImageDraw.Draw(region)
        for (x, y), line in zip(self.anchors, lines, strict=True):
            draw.text((x, y), line, font=self.font, fill=self.color, anchor="lm")
        frame[self.top : self.bottom, self.left : self.right] = np.asarray(region)
