"""Writers: the format from the suffix, the palette, GIF/HTML/MP4 encoding and atomic writes.

Oracles: a brute-force nearest-colour search in numpy for the palette, and the palette-mapped input
frames for every decoded GIF or HTML frame.
"""

from __future__ import annotations

import base64
import html.parser
import io
import re
import shutil
import stat
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageSequence

from loss_landscape_anim.render import writers
from loss_landscape_anim.render.writers import PaletteMapper, encode_frames, format_for

H, W = 48, 64
RED = (255, 0, 0)
EXTRA = [RED, (0, 0, 0), (255, 255, 255)]


def blocky_background(nx: int = 8, ny: int = 6) -> np.ndarray:
    """An (H, W, 3) gradient of ``nx * ny`` flat blocks: few enough colours for an exact palette."""
    yy, xx = np.mgrid[0:H, 0:W]
    bg = np.zeros((H, W, 3), np.uint8)
    bg[..., 0] = (xx * nx // W) * (255 // nx)
    bg[..., 1] = (yy * ny // H) * (255 // ny)
    bg[..., 2] = 90
    return bg


def moving_square(n: int = 5, background: np.ndarray | None = None) -> list[np.ndarray]:
    """``n`` frames of a red 10 x 10 square moving right by 10 px a frame over ``background``."""
    bg = blocky_background() if background is None else background
    frames = []
    for k in range(n):
        frame = bg.copy()
        frame[5:15, 5 + 10 * k : 15 + 10 * k] = RED
        frames.append(frame)
    return frames


def palette_source(frames: list[np.ndarray], background: np.ndarray | None = None):
    bg = blocky_background() if background is None else background
    return bg, frames[-1], EXTRA


def truth(frames: list[np.ndarray], source) -> list[np.ndarray]:
    """What each frame must decode to: its colours mapped onto the palette the writer fits."""
    mapper = PaletteMapper(*source, n_colors=writers._TRANSPARENT)
    return [mapper.palette[mapper.map(f)].astype(np.uint8) for f in frames]


def decode_gif(data: bytes) -> tuple[list[np.ndarray], list[int]]:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "GIF"
        frames, durations = [], []
        for frame in ImageSequence.Iterator(im):
            frames.append(np.asarray(frame.convert("RGB")).copy())
            durations.append(int(frame.info.get("duration", 0)))
    return frames, durations


# -- format_for --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("out.gif", "gif"),
        ("OUT.GIF", "gif"),
        ("dir.mp4/anim.Gif", "gif"),
        ("a.b.html", "html"),
        ("page.HTML", "html"),
        (Path("x") / "y.html", "html"),
    ],
)
def test_format_from_suffix_case_insensitive(name, expected):
    assert format_for(name) == expected


def test_format_mp4_from_suffix_when_ffmpeg_is_on_path(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: "/opt/bin/ffmpeg")
    assert format_for("movie.MP4") == "mp4"
    assert writers.ffmpeg_executable() == "/opt/bin/ffmpeg"


def test_format_without_output_defaults_to_gif():
    assert format_for(None) == "gif"
    assert format_for(None, "html") == "html"
    assert format_for(None, "HTML") == "html"


def test_explicit_format_for_a_file_without_suffix():
    assert format_for("animation", "gif") == "gif"


@pytest.mark.parametrize("name", ["out.txt", "out.png", "out", "out.gif.bak"])
def test_unknown_suffix_names_the_file_and_the_accepted_suffixes(name):
    with pytest.raises(ValueError, match=re.escape(repr(name))) as info:
        format_for(name)
    assert ".gif, .mp4, .html" in str(info.value)


def test_format_suffix_mismatch():
    with pytest.raises(ValueError, match=r"'a\.gif' has suffix \.gif but format is 'html'"):
        format_for("a.gif", "html")


def test_unknown_format_lists_the_formats():
    with pytest.raises(ValueError, match=r"format to be one of 'gif', 'mp4', 'html' but got 'avi'"):
        format_for(None, "avi")


def _no_ffmpeg(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import raises ImportError


def test_mp4_without_ffmpeg_raises_with_install_hint(monkeypatch):
    _no_ffmpeg(monkeypatch)
    with pytest.raises(RuntimeError, match=r"needs ffmpeg.*pip install imageio-ffmpeg"):
        format_for("movie.mp4")
    with pytest.raises(RuntimeError, match="apt-get install ffmpeg"):
        format_for(None, "mp4")


def test_mp4_with_broken_imageio_ffmpeg_raises_with_install_hint(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None)
    fake = types.ModuleType("imageio_ffmpeg")

    def missing_binary():
        raise RuntimeError("no ffmpeg exe could be found")

    fake.get_ffmpeg_exe = missing_binary  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", fake)
    with pytest.raises(RuntimeError, match="needs ffmpeg"):
        format_for("movie.mp4")


def test_mp4_uses_imageio_ffmpeg_when_not_on_path(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: None)
    fake = types.ModuleType("imageio_ffmpeg")
    fake.get_ffmpeg_exe = lambda: "/site-packages/imageio_ffmpeg/binaries/ffmpeg"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", fake)
    assert format_for("movie.mp4") == "mp4"
    assert writers.ffmpeg_executable().endswith("binaries/ffmpeg")


# -- PaletteMapper -----------------------------------------------------------------------------


@pytest.mark.parametrize(("nx", "ny"), [(1, 1), (8, 6), (16, 15)])
def test_palette_maps_the_background_exactly(nx, ny):
    bg = blocky_background(nx, ny)
    n_distinct = len(np.unique(bg.reshape(-1, 3), axis=0))
    assert n_distinct == nx * ny
    mapper = PaletteMapper(bg, bg, EXTRA, n_colors=256)
    assert len(mapper.palette) <= 256
    indices = mapper.map(bg)
    assert indices.shape == (H, W)
    assert indices.dtype == np.uint8
    np.testing.assert_array_equal(mapper.palette[indices], bg)


def test_palette_maps_the_reserved_colours_exactly():
    bg = blocky_background()
    mapper = PaletteMapper(bg, bg, [(255, 127, 14), (230, 25, 75)], n_colors=255)
    frame = bg.copy()
    frame[:10, :10] = (255, 127, 14)
    frame[-10:, -10:] = (230, 25, 75)
    mapped = mapper.palette[mapper.map(frame)]
    np.testing.assert_array_equal(mapped, frame)


def test_palette_leaves_the_transparent_index_free():
    """With n_colors=255 the palette has at most 255 entries, so index 255 never is a colour."""
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)  # thousands of colours
    mapper = PaletteMapper(noisy, noisy[::-1], EXTRA, n_colors=writers._TRANSPARENT)
    assert len(mapper.palette) <= writers._TRANSPARENT
    assert mapper.map(rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)).max() < 255


def test_palette_maps_arbitrary_colours_to_their_nearest_entry():
    rng = np.random.default_rng(1)
    bg = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    mapper = PaletteMapper(bg, bg, EXTRA, n_colors=255)
    frame = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    frame[:4] = bg[:4]  # some pixels equal to the background: the precomputed path
    indices = mapper.map(frame)

    palette = mapper.palette.astype(np.int64)
    pixels = frame.reshape(-1, 1, 3).astype(np.int64)
    distances = ((pixels - palette[None]) ** 2).sum(axis=2)  # brute force: every pixel x entry
    chosen = distances[np.arange(len(distances)), indices.ravel()]
    np.testing.assert_array_equal(chosen, distances.min(axis=1))


def test_palette_lookup_is_the_same_from_the_cache():
    rng = np.random.default_rng(2)
    bg = blocky_background()
    mapper = PaletteMapper(bg, bg, EXTRA, n_colors=255)
    frame = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    first = mapper.map(frame)
    np.testing.assert_array_equal(mapper.map(frame), first)


# -- GIF -----------------------------------------------------------------------------------------


def test_gif_frames_decode_to_the_palette_mapped_frames(tmp_path):
    frames = moving_square(5)
    source = palette_source(frames)
    out = tmp_path / "square.gif"
    assert encode_frames(iter(frames), "gif", fps=10, output=out, palette_source=source) is None
    decoded, durations = decode_gif(out.read_bytes())
    assert len(decoded) == 5
    assert durations == [100] * 5
    expected = truth(frames, source)
    for k, (got, want) in enumerate(zip(decoded, expected, strict=True)):
        assert got.shape == (H, W, 3)
        np.testing.assert_array_equal(got, want, err_msg=f"frame {k}")
    # the background has few colours, so the truth is the input itself
    for got, frame in zip(decoded, frames, strict=True):
        np.testing.assert_array_equal(got, frame)


def test_gif_delta_frames_reconstruct_many_colours_exactly():
    """A noisy background with more colours than the palette, and a square that moves back and
    forth: every decoded frame still equals the palette-mapped truth."""
    rng = np.random.default_rng(3)
    bg = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    frames = []
    for k in [0, 1, 2, 1, 0, 3, 3, 2]:
        frame = bg.copy()
        frame[10:30, 8 * k : 8 * k + 12] = RED
        frame[40:, k] = (k * 30, 255 - k * 30, 7)
        frames.append(frame)
    source = (bg, frames[-1], EXTRA)
    data = encode_frames(frames, "gif", fps=20, output=None, palette_source=source)
    assert isinstance(data, bytes)
    assert data.startswith(b"GIF89a")
    decoded, _ = decode_gif(data)
    assert len(decoded) == len(frames)
    for k, (got, want) in enumerate(zip(decoded, truth(frames, source), strict=True)):
        np.testing.assert_array_equal(got, want, err_msg=f"frame {k}")


def test_gif_with_repeated_frames_plays_the_same_sequence():
    """Identical frames may be merged by the encoder, but the time-expanded sequence (each decoded
    frame repeated for its duration) is the input sequence."""
    frames = moving_square(3)
    frames = [frames[0], frames[1], frames[1], frames[1], frames[1], frames[2]]
    source = palette_source(frames)
    data = encode_frames(frames, "gif", fps=10, output=None, palette_source=source)
    decoded, durations = decode_gif(data)
    expanded = [f for f, d in zip(decoded, durations, strict=True) for _ in range(d // 100)]
    assert sum(durations) == 100 * len(frames)
    assert len(expanded) == len(frames)
    for got, want in zip(expanded, truth(frames, source), strict=True):
        np.testing.assert_array_equal(got, want)


def test_single_frame_gif():
    frames = moving_square(1)
    data = encode_frames(frames, "gif", fps=1, output=None, palette_source=palette_source(frames))
    decoded, durations = decode_gif(data)
    assert len(decoded) == 1
    assert durations == [1000]
    np.testing.assert_array_equal(decoded[0], frames[0])


def test_gif_loops_forever():
    frames = moving_square(2)
    data = encode_frames(frames, "gif", fps=10, output=None, palette_source=palette_source(frames))
    with Image.open(io.BytesIO(data)) as im:
        assert im.info.get("loop") == 0


# -- HTML ----------------------------------------------------------------------------------------


class _TagCollector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in {"meta", "input", "img", "br"}:
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()


def test_html_has_one_png_per_frame_and_is_well_formed(tmp_path):
    frames = moving_square(5)
    source = palette_source(frames)
    out = tmp_path / "page.html"
    encode_frames(frames, "html", fps=4, output=out, palette_source=source)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")

    parser = _TagCollector()
    parser.feed(page)
    parser.close()
    assert parser.open == []
    assert {"html", "head", "body", "img", "script", "input", "button"} <= set(parser.tags)
    assert "%FRAMES%" not in page and "%DELAY%" not in page and "%LAST%" not in page
    assert 'max="4"' in page
    assert "setInterval(() => show((k + 1) % frames.length), 250)" in page

    payloads = re.findall(r'"data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(payloads) == 5
    assert page.count("data:image/png") == 5
    for payload, want in zip(payloads, truth(frames, source), strict=True):
        with Image.open(io.BytesIO(base64.b64decode(payload))) as png:
            assert png.format == "PNG"
            np.testing.assert_array_equal(np.asarray(png.convert("RGB")), want)


def test_html_to_memory_returns_the_page():
    frames = moving_square(2)
    data = encode_frames(frames, "html", fps=10, output=None, palette_source=palette_source(frames))
    assert isinstance(data, bytes)
    assert data.decode().count("data:image/png;base64,") == 2


# -- MP4 through a stand-in ffmpeg ------------------------------------------------------------


needs_sh = pytest.mark.skipif(sys.platform == "win32", reason="the stand-in ffmpeg is a sh script")


def _fake_ffmpeg(tmp_path: Path, body: str, monkeypatch) -> Path:
    """An executable ``ffmpeg`` shell script, found by ``shutil.which``; it logs its arguments."""
    script = tmp_path / "bin" / "ffmpeg"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/args.txt"\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: str(script))
    return script


@needs_sh
def test_mp4_pipes_raw_rgb_frames_to_ffmpeg(tmp_path, monkeypatch):
    # the stand-in copies stdin to its last argument (the output file)
    _fake_ffmpeg(tmp_path, 'for last; do :; done\ncat > "$last"', monkeypatch)
    frames = moving_square(4)
    out = tmp_path / "movie.mp4"
    result = encode_frames(frames, "mp4", fps=12, output=out, palette_source=palette_source(frames))
    assert result is None
    assert out.read_bytes() == b"".join(f.tobytes() for f in frames)
    args = (tmp_path / "args.txt").read_text().split("\n")
    assert args[args.index("-s") + 1] == f"{W}x{H}"
    assert args[args.index("-r") + 1] == "12"
    assert args[args.index("-pix_fmt") + 1] == "rgb24"
    assert list(tmp_path.glob("*.part")) == []


def test_mp4_needs_an_output_file():
    frames = moving_square(2)
    with pytest.raises(ValueError, match="MP4 output needs a file"):
        encode_frames(frames, "mp4", fps=10, output=None, palette_source=palette_source(frames))


@needs_sh
def test_mp4_reports_ffmpeg_failure_and_keeps_the_old_file(tmp_path, monkeypatch):
    _fake_ffmpeg(
        tmp_path, 'cat > /dev/null\necho "Unknown encoder libx264" >&2\nexit 3', monkeypatch
    )
    out = tmp_path / "movie.mp4"
    out.write_bytes(b"previous movie")
    frames = moving_square(3)
    with pytest.raises(
        RuntimeError, match="ffmpeg failed with exit code 3: Unknown encoder libx264"
    ):
        encode_frames(frames, "mp4", fps=10, output=out, palette_source=palette_source(frames))
    assert out.read_bytes() == b"previous movie"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


@needs_sh
def test_mp4_reports_ffmpeg_that_exits_without_reading_its_input(tmp_path, monkeypatch):
    """An ffmpeg that fails at start-up (say, no libx264) closes the pipe; the error must be
    ffmpeg's message, not a BrokenPipeError."""
    _fake_ffmpeg(tmp_path, 'echo "Unknown encoder libx264" >&2\nexit 1', monkeypatch)
    out = tmp_path / "movie.mp4"
    out.write_bytes(b"previous movie")
    big = np.zeros((256, 256, 3), np.uint8)  # 192 KiB a frame: more than a pipe buffer
    frames = [big, big + 1, big + 2]
    with pytest.raises(RuntimeError, match="ffmpeg failed with exit code 1: Unknown encoder"):
        encode_frames(frames, "mp4", fps=10, output=out, palette_source=(big, big, EXTRA))
    assert out.read_bytes() == b"previous movie"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


# -- atomic writes -------------------------------------------------------------------------------


def failing_frames(frames: list[np.ndarray], after: int = 2):
    for k, frame in enumerate(frames):
        if k == after:
            raise RuntimeError("renderer failed midway")
        yield frame


@pytest.mark.parametrize("suffix", ["gif", "html"])
def test_failed_encoding_keeps_the_existing_file(tmp_path, suffix):
    out = tmp_path / f"anim.{suffix}"
    old = b"an earlier animation \x00\x01\x02"
    out.write_bytes(old)
    frames = moving_square(5)
    with pytest.raises(RuntimeError, match="renderer failed midway"):
        encode_frames(
            failing_frames(frames),
            suffix,
            fps=10,
            output=out,
            palette_source=palette_source(frames),
        )
    assert out.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


@needs_sh
def test_failed_mp4_encoding_midway_keeps_the_existing_file(tmp_path, monkeypatch):
    """The stand-in ffmpeg has written part of the stream to the temporary file when the frames
    fail: that file is removed and the old output is untouched."""
    _fake_ffmpeg(tmp_path, 'for last; do :; done\ncat > "$last"', monkeypatch)
    out = tmp_path / "movie.mp4"
    out.write_bytes(b"previous movie")
    frames = moving_square(5)
    with pytest.raises(RuntimeError, match="renderer failed midway"):
        encode_frames(
            failing_frames(frames),
            "mp4",
            fps=10,
            output=out,
            palette_source=palette_source(frames),
        )
    assert out.read_bytes() == b"previous movie"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


@pytest.mark.parametrize("suffix", ["gif", "html"])
def test_failed_write_keeps_the_existing_file(tmp_path, monkeypatch, suffix):
    """A failure while the bytes are being written (disk full) leaves no partial file."""
    out = tmp_path / f"anim.{suffix}"
    out.write_bytes(b"old")
    real_open = open

    class DiskFull:
        """A file that takes 200 bytes, then fails as a full disk does."""

        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def write(self, data):
            if self.written + len(data) > 200:
                raise OSError(28, "No space left on device")
            self.written += len(data)
            return self.handle.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def full_disk_open(path, mode="r", *args, **kwargs):
        return DiskFull(real_open(path, mode, *args, **kwargs))

    monkeypatch.setattr(writers, "open", full_disk_open, raising=False)
    frames = moving_square(3)
    with pytest.raises(OSError, match="No space left"):
        encode_frames(frames, suffix, fps=10, output=out, palette_source=palette_source(frames))
    monkeypatch.undo()
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"anim.{suffix}"]


def test_write_creates_missing_folders(tmp_path):
    out = tmp_path / "new" / "dir" / "anim.gif"
    frames = moving_square(2)
    encode_frames(frames, "gif", fps=10, output=out, palette_source=palette_source(frames))
    decoded, _ = decode_gif(out.read_bytes())
    assert len(decoded) == 2


# -- GIF timing ----------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 400), fps=st.integers(1, writers.MAX_GIF_FPS))
def test_gif_durations_are_whole_hundredths_whose_mean_is_one_over_fps(n, fps):
    durations = writers.gif_durations(n, fps)
    assert len(durations) == n
    assert all(d % 10 == 0 and d >= 20 for d in durations)
    elapsed = np.cumsum(durations)
    ideal = np.arange(1, n + 1) * 1000 / fps
    assert np.all(np.abs(elapsed - ideal) <= 5 + 1e-9)  # half the 10 ms unit, never drifting


def test_a_15_fps_gif_alternates_70_and_60_ms():
    frames = moving_square(6)
    data = encode_frames(frames, "gif", fps=15, output=None, palette_source=palette_source(frames))
    _, durations = decode_gif(data)
    assert durations == [70, 60, 70, 70, 60, 70]
    assert sum(durations) / len(durations) == pytest.approx(1000 / 15)


def test_merged_repeated_frames_keep_the_timing_at_15_fps():
    """Whatever identical frames the encoder merges, each input frame is on screen at the middle
    of its own time slot."""
    frames = moving_square(3)
    frames = [frames[0], frames[1], frames[1], frames[1], frames[2]]
    source = palette_source(frames)
    data = encode_frames(frames, "gif", fps=15, output=None, palette_source=source)
    decoded, durations = decode_gif(data)
    intended = writers.gif_durations(len(frames), 15)
    assert sum(durations) == sum(intended)
    middles = np.cumsum(intended) - np.asarray(intended) / 2
    shown = np.searchsorted(np.cumsum(durations), middles, side="right")
    for k, want in enumerate(truth(frames, source)):
        np.testing.assert_array_equal(decoded[shown[k]], want, err_msg=f"frame {k}")


@pytest.mark.parametrize("fps", [51, 60, 200, 1000])
def test_a_gif_faster_than_50_fps_is_refused(fps):
    with pytest.raises(ValueError, match=f"Expected fps to be at most 50 for a GIF but got {fps}"):
        writers.check_fps(fps, "gif")
    assert writers.check_fps(np.int64(fps), "mp4") == fps
    assert writers.check_fps(fps, "html") == fps
    assert writers.check_fps(np.int32(50), "gif") == 50


@pytest.mark.parametrize("name", [".gif", "out/.GIF", ".mp4"])
def test_a_bare_suffix_is_not_taken_for_a_file_name(name):
    with pytest.raises(ValueError, match=r"Expected output to be a file name before its suffix"):
        format_for(name)
