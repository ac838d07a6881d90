"""The exports of a run (surface files, HDF5, TensorBoard) and the animation of a surface file
with no model at hand; what ``--export``, ``--tensorboard`` and ``--from-h5`` run."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from .._io import check_output_path
from ..export import MESH_FORMATS, export_surface, log_tensorboard
from ..export._deps import require
from ..render import Animation
from ..render.turntable import turntable
from ..results import LossGrid, Plane

__all__ = [
    "EXPORT_FORMATS",
    "SURFACE_FRAMES",
    "animate_surface_file",
    "check_exports",
    "write_exports",
]

logger = logging.getLogger(__name__)

#: Suffixes ``export=`` accepts: the mesh formats and Li et al.'s HDF5 surfaces.
EXPORT_FORMATS = (*MESH_FORMATS, ".h5")
#: Frames of the camera turn around a surface file's surface.
SURFACE_FRAMES = 60


def check_exports(
    export: str | os.PathLike | Sequence[str | os.PathLike] | None,
    tensorboard: str | os.PathLike | None,
) -> tuple[list[Path], Path | None]:
    """``export`` as a list of writable paths with known suffixes, and ``tensorboard`` as a
    folder path; raises ``ValueError`` naming the argument before any work."""
    paths = [] if export is None else [export] if isinstance(export, str | os.PathLike) else export
    checked = []
    for path in paths:
        target = check_output_path(path, "export")
        if target.suffix.lower() not in EXPORT_FORMATS:
            raise ValueError(
                f"Expected export files ending in one of {', '.join(EXPORT_FORMATS)} but got "
                f"{str(path)!r}"
            )
        checked.append(target)
    folder = None
    if tensorboard is not None:
        folder = Path(tensorboard)
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"Expected tensorboard to be a folder but {str(folder)!r} is a file")
    _check_packages(checked, folder)
    return checked, folder


def _check_packages(export: list[Path], tensorboard: Path | None) -> None:
    """Raise ``ImportError`` naming the extra before any work when a package is missing."""
    needed = {"h5py": "Writing .h5 surfaces"} if any(p.suffix == ".h5" for p in export) else {}
    for path in export:
        if path.suffix.lower() in (".vts", ".vtp"):
            needed["pyvista"] = f"Writing {path.suffix} files"
        elif path.suffix.lower() != ".h5":
            needed["meshio"] = f"Writing {path.suffix} meshes"
    if tensorboard is not None:
        needed["tensorboard"] = "Logging to TensorBoard"
    for module, purpose in needed.items():
        require(module, purpose)


def write_exports(
    grid: LossGrid,
    plane: Plane | None,
    animation: Animation | None,
    export: Sequence[Path],
    tensorboard: Path | None,
    *,
    step: int = 0,
) -> None:
    """Write each file of ``export`` (a mesh, with the path in ``.vtp``; ``.h5`` in Li et al.'s
    layout) and log to a TensorBoard folder: the animation when it is a GIF, the figure and
    the surface."""
    for path in export:
        suffix = path.suffix.lower()
        if suffix == ".h5":
            grid.save_h5(path)
        else:
            export_surface(grid, path, plane=plane if suffix == ".vtp" else None)
        logger.info("wrote %s", path)
    if tensorboard is None:
        return
    from torch.utils.tensorboard import SummaryWriter

    if animation is not None and animation.format != "gif":
        logger.warning(
            "TensorBoard plays GIF animations only: the %s animation is not logged there",
            animation.format,
        )
        animation = None
    with SummaryWriter(str(tensorboard)) as writer:
        log_tensorboard(writer, animation=animation, grid=grid, plane=plane, step=step)
    logger.info("logged to TensorBoard in %s", tensorboard)


def animate_surface_file(
    path: str | os.PathLike,
    output: str | os.PathLike | None,
    *,
    key: str = "train_loss",
    view: str = "surface",
    fps: int = 15,
    n_frames: int = SURFACE_FRAMES,
    progress: bool = True,
) -> tuple[Animation, LossGrid]:
    """Animate surface ``key`` of an HDF5 surface file (Li et al.'s layout) with no model at
    hand: no path, the surface and its minimum, seen with a slow camera turn in 3D
    (``view="surface"``; ``"contour"`` gives a still picture). Returns the animation and the
    grid read."""
    grid = LossGrid.load_h5(path, key=key)
    title = f"{Path(path).name}: {key}"
    animation = turntable(
        grid, output, view=view, n_frames=n_frames, fps=fps, title=title, progress=progress
    )
    return animation, grid
