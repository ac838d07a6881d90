"""Model weights on disk: a ``state_dict`` written with ``torch.save`` and read back with
``torch.load(weights_only=True)``, which rebuilds tensors only and never runs code from the file."""

from __future__ import annotations

import copy
import os
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from .._io import atomic_path, check_not_pickle, damaged
from ..errors import IncompatibleFileError, UnsafeFileError

__all__ = ["load_weights", "save_weights"]


def save_weights(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model.state_dict()`` to ``path`` atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    # Through a file handle, so the archive's inner folder name does not depend on the temporary
    # file's random name: the same weights give the same bytes.
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(state, fh)
    return Path(path)


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """A copy of ``model`` with the weights saved at ``path``; the caller's model is untouched.

    Raises ``FileNotFoundError`` when the file is missing, :class:`UnsafeFileError` when it is not
    a weights-only ``state_dict`` (a pickled module, for example), and
    :class:`IncompatibleFileError` when it is damaged (truncated, corrupt), a directory, or
    belongs to another architecture.
    """
    path = Path(path)
    if path.is_dir():
        raise IncompatibleFileError(
            f"Expected {str(path)!r} to be a weights file but it is a directory"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"No saved weights at {str(path)!r}: run once with load_model=False to create them"
        )
    check_not_pickle(path, expected="a state_dict written by torch.save")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" not in str(exc).lower():  # a pickle stream cut short or garbled
            raise damaged(path, _first_line(exc)) from None
        raise UnsafeFileError(
            f"Refusing to load {str(path)!r}: it is not a weights-only state_dict "
            f"({_first_line(exc)})"
        ) from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise damaged(path, _first_line(exc)) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UnsafeFileError(
            f"Expected {str(path)!r} to hold a state_dict (names -> tensors) but it holds "
            f"{type(state).__name__}"
        )
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        raise IncompatibleFileError(
            f"The weights in {str(path)!r} do not fit this model: the file has "
            f"{_describe(found)}, the model expects {_describe(expected)}"
        )
    loaded = copy.deepcopy(model).cpu()
    loaded.load_state_dict(state)
    return loaded


def _first_line(exc: BaseException) -> str:
    """The first sentence of an error (torch's run on over several lines of advice)."""
    text = " ".join(str(exc).split())
    return text.split(". ")[0]


def _describe(shapes: dict[str, tuple[int, ...]], limit: int = 4) -> str:
    total = sum(int(torch.Size(s).numel()) for s in shapes.values())
    names = ", ".join(f"{k}{list(v)}" for k, v in list(shapes.items())[:limit])
    more = f", ... ({len(shapes) - limit} more)" if len(shapes) > limit else ""
    return f"{len(shapes)} tensors / {total} values [{names}{more}]"
