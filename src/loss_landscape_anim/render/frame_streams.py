"""Frame streams: palette-indexed frames written to an open file one at a time, so rendering holds
a few frames in memory whatever their number.

``GifStream`` writes, frame by frame, the same bytes Pillow's ``save(save_all=True, ...)`` writes
for the whole list at once: each frame after the first holds only the pixels that changed
(the others are the transparent index, over the previous frame: disposal 1), cropped to the box
where it differs from the previous delta frame, and a frame identical to the previous one adds its
duration to it. The header and frame bytes come from Pillow's ``GifImagePlugin.getheader`` and
``getdata``. ``HtmlStream`` writes the page with one PNG per frame, frame by frame.
"""

from __future__ import annotations

import base64
import io
from typing import IO, Any

import numpy as np

__all__ = ["TRANSPARENT", "GifStream", "HtmlStream", "palette_image"]

#: Palette index reserved for "unchanged since the previous frame" in GIF delta frames.
TRANSPARENT = 255


def palette_image(indexed: np.ndarray, flat_palette: list[int]) -> Any:
    """A Pillow "P" image of palette indices (H, W) uint8 with ``flat_palette`` (768 values)."""
    from PIL import Image

    image = Image.fromarray(indexed, mode="P")
    image.putpalette(flat_palette)
    return image


def _flat_palette(palette: np.ndarray) -> list[int]:
    padded = np.zeros((256, 3), dtype=np.uint8)
    padded[: len(palette)] = palette
    return padded.ravel().tolist()


def gif_delay(k: int, fps: int) -> int:
    """The delay in milliseconds of frame ``k`` (from 0) at ``fps``: a multiple of the GIF's 10 ms
    unit chosen so that the running total of delays stays within 5 ms of ``(k + 1) * 1000 / fps``
    (15 fps gives 70, 60, 70, 70, 60, 70, ... ms: a mean of 1/15 s)."""
    step = 100 / fps
    return 10 * int(round((k + 1) * step) - round(k * step))


class GifStream:
    """Writes palette-indexed frames (H, W) uint8 to ``fh`` as one looping GIF.

    A frame is written once the next one is known (a repeated frame lengthens it instead), so the
    stream holds three frames at most: the last one added, its delta, and the pending delta.
    """

    def __init__(self, fh: IO[bytes], palette: np.ndarray, fps: int):
        self.fh = fh
        self.palette = _flat_palette(palette)
        self.fps = fps
        self.info: dict[str, Any] = {
            "duration": gif_delay(0, fps),
            "loop": 0,
            "optimize": False,
            "disposal": 1,
            "transparency": TRANSPARENT,
        }
        self._last: np.ndarray | None = None  # the last frame added
        self._last_delta: np.ndarray | None = None  # the delta of the last distinct frame
        self._pending: tuple[np.ndarray, tuple[int, int, int, int] | None] | None = None
        self._pending_duration = 0
        self._written = 0
        self._added = 0

    def add(self, indexed: np.ndarray) -> None:
        """Add the next frame: palette indices (H, W) uint8, never the transparent index."""
        duration = gif_delay(self._added, self.fps)
        self._added += 1
        if self._last is None:
            delta = indexed
        else:
            delta = np.where(indexed != self._last, indexed, np.uint8(TRANSPARENT))
        self._last = indexed
        if self._pending is None:
            self._pending, self._pending_duration = (delta, None), duration
            self._last_delta = delta
            return
        assert self._last_delta is not None
        box = _changed_box(self._last_delta, delta)
        if box is None:  # the same frame again: show the pending one longer
            self._pending_duration += duration
            return
        self._write_pending()
        self._pending, self._pending_duration = (delta, box), duration
        self._last_delta = delta

    def close(self) -> None:
        """Write the last frame and the trailer. A single distinct frame is written as a still
        GIF, as Pillow does."""
        if self._pending is None:
            raise ValueError("Cannot write a GIF without frames")
        if self._written == 0:
            image = palette_image(self._pending[0], self.palette)
            info = {**self.info, "duration": self._pending_duration}
            image.save(self.fh, format="GIF", save_all=True, append_images=[], **info)
            return
        self._write_pending()
        self.fh.write(b";")

    def _write_pending(self) -> None:
        from PIL import GifImagePlugin

        assert self._pending is not None
        delta, box = self._pending
        image = palette_image(delta, self.palette)
        info = {**self.info, "duration": self._pending_duration}
        if box is None:  # the first frame, with the global header
            header, _ = GifImagePlugin.getheader(image, None, dict(info))
            self.fh.write(b"".join(header))
            offset: tuple[int, int] = (0, 0)
        else:
            info["include_color_table"] = True
            if box != (0, 0, *image.size):
                image = image.crop(box)
            offset = box[:2]
        for chunk in GifImagePlugin.getdata(image, offset, **info):
            self.fh.write(chunk)
        self._written += 1


def _changed_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(left, upper, right, lower)`` of the pixels where ``a`` and ``b`` differ (right and
    lower exclusive), or None when they are equal."""
    changed = a != b
    rows = np.flatnonzero(changed.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(changed.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


class HtmlStream:
    """Writes a self-contained page to ``fh``: the frames as PNG (base64), a play/pause button and
    a step slider; each frame is encoded and written as it comes. The page's slider needs the
    number of frames up front (``n_frames``)."""

    def __init__(self, fh: IO[bytes], palette: np.ndarray, fps: int, n_frames: int):
        self.fh = fh
        self.palette = _flat_palette(palette)
        self.expected = n_frames
        self.n_frames = 0
        filled = _HTML_TEMPLATE.replace("%DELAY%", str(round(1000 / fps)))
        filled = filled.replace("%LAST%", str(n_frames - 1))
        self._head, self._tail = filled.split("%FRAMES%")

    def add(self, indexed: np.ndarray) -> None:
        buffer = io.BytesIO()
        palette_image(indexed, self.palette).save(buffer, format="PNG", optimize=False)
        encoded = base64.b64encode(buffer.getvalue()).decode()
        lead = ",\n" if self.n_frames else self._head
        self.fh.write(f'{lead}"data:image/png;base64,{encoded}"'.encode())
        self.n_frames += 1

    def close(self) -> None:
        if self.n_frames != self.expected or self.n_frames == 0:
            raise ValueError(
                f"Expected {self.expected} frames for the HTML animation but got {self.n_frames}"
            )
        self.fh.write(self._tail.encode())


_HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Loss landscape animation</title>
<style>body{font-family:sans-serif;margin:1em}#controls{margin-top:.5em}
#slider{width:60%;vertical-align:middle}</style></head>
<body><img id="frame" alt="loss landscape animation frame">
<div id="controls"><button id="play">pause</button>
<input id="slider" type="range" min="0" max="%LAST%" value="0">
<span id="label"></span></div>
<script>
const frames = [%FRAMES%];
const img = document.getElementById("frame"), slider = document.getElementById("slider");
const label = document.getElementById("label"), button = document.getElementById("play");
let k = 0, timer = null;
function show(i) { k = i; img.src = frames[i]; slider.value = i;
  label.textContent = "frame " + (i + 1) + " / " + frames.length; }
function play() { timer = setInterval(() => show((k + 1) % frames.length), %DELAY%);
  button.textContent = "pause"; }
function pause() { clearInterval(timer); timer = null; button.textContent = "play"; }
button.onclick = () => (timer ? pause() : play());
slider.oninput = () => { pause(); show(Number(slider.value)); };
show(0); play();
</script></body></html>
"""
