"""Animation writers, chosen by the output file's suffix: GIF (Pillow), MP4 (ffmpeg), HTML.

Every writer writes atomically: to a temporary file beside the output, renamed into place at the
end, so a failure never leaves a truncated file and keeps any earlier one.
"""

from __future__ import annotations

import io
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterable, Sized
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._io import atomic_path
from .._validate import check_choice, check_positive_int
from .frame_streams import TRANSPARENT as _TRANSPARENT
from .frame_streams import GifStream, HtmlStream, gif_delay

__all__ = [
    "FORMATS",
    "MAX_GIF_FPS",
    "PaletteMapper",
    "check_fps",
    "encode_frames",
    "format_for",
    "gif_durations",
]

FORMATS = ("gif", "mp4", "html")


#: The highest frame rate a GIF plays at: its frame delays are whole hundredths of a second, and
#: browsers slow delays under 2 hundredths (0 or 10 ms) down to 100 ms.
MAX_GIF_FPS = 50


def check_fps(fps: Any, fmt: str, name: str = "fps") -> int:
    """``fps`` as an int, if it is a positive integer a ``fmt`` file can play at (at most
    :data:`MAX_GIF_FPS` for a GIF)."""
    fps = check_positive_int(fps, name)
    if fmt == "gif" and fps > MAX_GIF_FPS:
        raise ValueError(
            f"Expected {name} to be at most {MAX_GIF_FPS} for a GIF but got {fps}: GIF frame "
            "delays are whole hundredths of a second and browsers play delays under 20 ms at "
            "100 ms (10 fps). Use a lower rate, or write .mp4 or .html"
        )
    return fps


def gif_durations(n_frames: int, fps: int) -> list[int]:
    """Per-frame GIF delays in milliseconds, each a multiple of the format's 10 ms unit, whose
    running total stays within 5 ms of ``k * 1000 / fps``: their mean is 1/``fps`` (15 fps gives
    70, 60, 70, 70, 60, 70, ... ms)."""
    return [gif_delay(k, fps) for k in range(n_frames)]


def format_for(
    output: str | os.PathLike | None, format: str | None = None, name: str = "output"
) -> str:
    """The format to write ``output`` in: ``format`` if given, else the file's suffix."""
    if output is not None and Path(output).name.startswith(".") and not Path(output).suffix:
        hidden = Path(output).name
        if hidden.lower().lstrip(".") in FORMATS:
            raise ValueError(
                f"Expected {name} to be a file name before its suffix (e.g. 'sample{hidden}') "
                f"but got {str(output)!r}, a hidden file with no suffix"
            )
    suffix = Path(output).suffix.lower().lstrip(".") if output is not None else ""
    if format is not None:
        format = check_choice(format, "format", FORMATS)
        if suffix and suffix != format:
            raise ValueError(
                f"The output {str(output)!r} has suffix .{suffix} but format is {format!r}"
            )
    elif output is None:
        format = "gif"
    elif suffix in FORMATS:
        format = suffix
    else:
        accepted = ", ".join(f".{f}" for f in FORMATS)
        raise ValueError(f"Expected {name} to end in one of {accepted} but got {str(output)!r}")
    if format == "mp4":
        ffmpeg_executable()  # fail before rendering, not after
    return format


def ffmpeg_executable() -> str:
    """The ffmpeg binary (on PATH, or from the ``imageio-ffmpeg`` package)."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        raise RuntimeError(
            "Writing MP4 needs ffmpeg: install it (e.g. `apt-get install ffmpeg`) or "
            "`pip install imageio-ffmpeg`, or write a .gif / .html instead"
        ) from None


def encode_frames(
    frames: Iterable[np.ndarray],
    fmt: str,
    *,
    fps: int,
    output: str | os.PathLike | None,
    palette_source: tuple[np.ndarray, np.ndarray, list[tuple[int, int, int]]],
    n_frames: int | None = None,
) -> bytes | None:
    """Encode frames (H, W, 4) RGBA or (H, W, 3) RGB as ``fmt``; write ``output`` atomically, or
    return the bytes. Frames are encoded and written one at a time as they come (memory does not
    grow with their number); HTML needs their number up front: ``n_frames``, else ``len(frames)``.
    """
    if fmt == "mp4":
        return _write_mp4(frames, fps, output)
    if fmt == "html" and n_frames is None:
        frames = frames if isinstance(frames, Sized) else list(frames)
        n_frames = len(frames)  # type: ignore[arg-type]
    mapper = PaletteMapper(*palette_source, n_colors=_TRANSPARENT)

    def write(fh: IO[bytes]) -> None:
        stream: GifStream | HtmlStream = (
            GifStream(fh, mapper.palette, fps)
            if fmt == "gif"
            else HtmlStream(fh, mapper.palette, fps, n_frames or 0)
        )
        for frame in frames:
            stream.add(mapper.map(frame))
        stream.close()

    if output is None:
        buffer = io.BytesIO()
        write(buffer)
        return buffer.getvalue()
    with atomic_path(output) as tmp, open(tmp, "wb") as fh:
        write(fh)
    return None


class PaletteMapper:
    """Maps RGB frames to indices of one 256-colour palette fitted to the static background,
    the last frame and the moving artists' colours.

    Pixels equal to the background reuse its precomputed indices; the others are looked up in a
    cache of every 24-bit colour met so far, so each distinct colour is matched once per animation.
    """

    def __init__(
        self,
        background: np.ndarray,
        last: np.ndarray,
        colors: list[tuple[int, int, int]],
        n_colors: int = 256,
    ):
        from PIL import Image

        colors = list(dict.fromkeys(colors))
        fitted = Image.fromarray(np.concatenate([background[..., :3], last[..., :3]])).quantize(
            colors=n_colors - len(colors),
            method=Image.Quantize.MEDIANCUT,
            dither=Image.Dither.NONE,
        )
        used = len(fitted.getcolors(n_colors) or []) or n_colors - len(colors)
        base = np.asarray((fitted.getpalette() or [])[: 3 * used], dtype=np.int32).reshape(-1, 3)
        self.palette = np.vstack([base, np.asarray(colors, dtype=np.int32)])
        self._cache = np.full(1 << 24, -1, dtype=np.int16)
        self._background = _pack(background)
        self._background_index = self._lookup(self._background.ravel()).reshape(
            background.shape[:2]
        )

    def map(self, frame: np.ndarray) -> np.ndarray:
        """Palette indices (H, W) uint8 of an RGB frame."""
        packed = _pack(frame)
        changed = packed != self._background
        out = self._background_index.copy()
        out[changed] = self._lookup(packed[changed])
        return out

    def _lookup(self, packed: np.ndarray) -> np.ndarray:
        index = self._cache[packed]
        missing = index < 0
        if missing.any():
            new = np.unique(packed[missing])
            rgb = np.stack([new & 255, (new >> 8) & 255, (new >> 16) & 255], axis=1).astype(
                np.int32
            )
            for lo in range(0, len(new), 4096):
                d = ((rgb[lo : lo + 4096, None, :] - self.palette[None]) ** 2).sum(axis=2)
                self._cache[new[lo : lo + 4096]] = d.argmin(axis=1)
            index = self._cache[packed]
        return index.astype(np.uint8)


def _pack(image: np.ndarray) -> np.ndarray:
    """(H, W) 24-bit keys ``r | g << 8 | b << 16`` of an RGBA (fast: a view) or RGB image."""
    if image.shape[-1] == 4 and image.dtype == np.uint8 and image.flags.c_contiguous:
        return image.view("<u4")[..., 0] & np.uint32(0xFFFFFF)
    rgb = image[..., :3].astype(np.uint32)
    return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)


def _write_mp4(
    frames: Iterable[np.ndarray], fps: int, output: str | os.PathLike | None
) -> bytes | None:
    if output is None:
        raise ValueError("MP4 output needs a file: pass an output path ending in .mp4")
    ffmpeg = ffmpeg_executable()
    iterator = iter(frames)
    first = next(iterator)
    h, w, channels = first.shape
    command = [
        ffmpeg,
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgba" if channels == 4 else "rgb24",
        "-s",
        f"{w}x{h}",
        "-r",
        str(fps),
        "-i",
        "-",
        "-vf",
        "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        "-pix_fmt",
        "yuv420p",
        "-vcodec",
        "libx264",
        "-f",
        "mp4",
    ]
    with (
        atomic_path(output) as tmp,
        subprocess.Popen(
            [*command, str(tmp)], stdin=subprocess.PIPE, stderr=subprocess.PIPE
        ) as process,
    ):
        assert process.stdin is not None and process.stderr is not None
        closed_early = False  # ffmpeg exited before reading every frame; its stderr says why
        try:
            for frame in itertools.chain([first], iterator):
                process.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            closed_early = True
        finally:
            try:
                process.stdin.close()
            except BrokenPipeError:
                closed_early = True
        errors = process.stderr.read().decode(errors="replace")
        code = process.wait()
        if code != 0 or closed_early:
            raise RuntimeError(f"ffmpeg failed with exit code {code}: {errors.strip()}")
    return None
