"""Loss surfaces in the HDF5 layout of Li et al.'s reference code (``plot_surface.py`` of "Visualizing
the Loss Landscape of Neural Nets", NeurIPS 2018), read and written for :class:`LossGrid`.

Their surface file holds 1-D ``xcoordinates`` and ``ycoordinates`` datasets and one dataset per
surface (``train_loss``, ``train_acc``, ``test_loss``, ...). Their code allocates a surface as an
array of shape ``(len(xcoordinates), len(ycoordinates))`` but fills it through its flat (row-major)
index ``k``, pairing ``k`` with the ``k``-th point of ``numpy.meshgrid(xcoordinates, ycoordinates)``:
the value at ``(xcoordinates[j], ycoordinates[i])`` sits at flat position ``i * nx + j``. Their
plotting scripts read it back the same way (``contour(X, Y, Z)`` with ``X, Y = meshgrid(x, y)``;
``h52vtp.py`` pairs the raveled meshgrid with the raveled values). So for a square grid the array
reads ``values[i, j]`` at ``(x[j], y[i])``, exactly as :attr:`LossGrid.loss`; for a non-square
grid the flat order is the same and only the declared shape differs. Reading reshapes the flat
values to ``(ny, nx)`` whichever of the two shapes the file declares; writing stores
``LossGrid.loss`` as it is (shape ``(ny, nx)``, the flat order their code uses, and the shape
their ``plot_2D.py`` can contour).

h5py is optional (``pip install "loss-landscape-anim[export]"``) and imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path, reading
from ..errors import IncompatibleFileError

__all__ = ["load_h5", "save_h5"]

#: Names of the coordinate datasets in Li et al.'s surface files.
X_KEY, Y_KEY = "xcoordinates", "ycoordinates"
#: The attribute that marks a file written by this package.
CREATOR = "loss_landscape_anim"


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError(
            "Reading and writing HDF5 surfaces needs h5py: "
            "pip install 'loss-landscape-anim[export]' (or pip install h5py)"
        ) from None
    return h5py


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key or key in (X_KEY, Y_KEY) or "/" in key:
        raise ValueError(
            f"Expected key to be the name of a surface dataset such as 'train_loss' or "
            f"'test_loss' (not {X_KEY!r}/{Y_KEY!r}, no '/') but got {key!r}"
        )
    return key


def save_h5(
    xs: np.ndarray,
    ys: np.ndarray,
    loss: np.ndarray,
    path: str | os.PathLike,
    *,
    key: str = "train_loss",
    provenance: dict,
) -> Path:
    """Write a grid's axes ``xs`` (nx,), ``ys`` (ny,) and ``loss`` (ny, nx) to ``path`` in Li et
    al.'s layout: ``xcoordinates``, ``ycoordinates``, the losses as ``key`` in float64, and
    ``provenance`` (None values left out) as attributes of the file, written atomically."""
    h5py = _h5py()
    key = _check_key(key)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        fh.create_dataset(X_KEY, data=np.asarray(xs, dtype=np.float64))
        fh.create_dataset(Y_KEY, data=np.asarray(ys, dtype=np.float64))
        fh.create_dataset(key, data=np.asarray(loss, dtype=np.float64))
        fh.attrs["creator"] = CREATOR
        for name, value in provenance.items():
            if value is not None:
                fh.attrs[name] = value
    return Path(path)


def load_h5(path: str | os.PathLike, *, key: str = "train_loss") -> tuple[dict, dict]:
    """The arrays ``xs`` (nx,), ``ys`` (ny,), ``loss`` (ny, nx) of surface ``key`` in the file at
    ``path`` (Li et al.'s layout), and the file's attributes as plain Python values.

    Raises ``FileNotFoundError`` for a missing file and :class:`IncompatibleFileError` for a file
    that is not HDF5, lacks the coordinates or the surface (naming the surfaces it holds), or
    holds a surface of another size than its coordinates.
    """
    h5py = _h5py()
    key = _check_key(key)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {str(path)!r}")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise IncompatibleFileError(
            f"Expected {str(path)!r} to be an HDF5 surface file but it is not HDF5 ({exc})"
        ) from None
    with fh:
        for needed in (X_KEY, Y_KEY, key):
            if needed not in fh:
                surfaces = sorted(k for k in fh if k not in (X_KEY, Y_KEY))
                raise IncompatibleFileError(
                    f"{str(path)!r} has no dataset {needed!r}; it holds {surfaces} besides "
                    f"the coordinates (a 1-D surface has no {Y_KEY!r})"
                )
        with reading(path):
            xs = np.asarray(fh[X_KEY][()], dtype=np.float64).reshape(-1)
            ys = np.asarray(fh[Y_KEY][()], dtype=np.float64).reshape(-1)
            values = np.asarray(fh[key][()])
            attrs = {name: _plain(value) for name, value in fh.attrs.items()}
    with reading(path):
        if values.ndim != 2 or values.size != xs.size * ys.size:
            raise ValueError(
                f"the surface {key!r} has shape {values.shape} but the coordinates make a "
                f"{xs.size} x {ys.size} grid"
            )
        loss = np.asarray(values, dtype=np.float64).reshape(ys.size, xs.size)
    return {"xs": xs, "ys": ys, "loss": loss}, attrs


def _plain(value: Any) -> Any:
    """An HDF5 attribute as a Python scalar or string."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value
