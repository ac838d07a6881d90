"""``Result``: the base of every result type, whose ``save``/``load`` come from its fields.

A result is a frozen dataclass (``eq=False``: its fields are arrays) that validates itself in
``__post_init__``. Its fields named in ``ARRAYS`` are written as arrays of a data-only ``.npz``
(None: left out), the others as JSON metadata, and ``load`` builds the result from them again,
so a damaged or inconsistent file is refused by the same checks as a bad result built by hand.
A result type adapts only what its fields cannot say (a derived field, a layout) through
:meth:`Result._saved` and :meth:`Result._from_saved`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from .._io import load_npz, reading, save_npz

__all__ = ["Result"]

R = TypeVar("R", bound="Result")


class Result:
    """Save and load for a frozen dataclass result (see the module docstring)."""

    #: The fields saved as arrays; every other field is saved as JSON metadata.
    ARRAYS: ClassVar[tuple[str, ...]] = ()
    #: The arrays a file must hold (the others may be absent: their fields' defaults).
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    #: The metadata a file must hold.
    REQUIRED_META: ClassVar[tuple[str, ...]] = ()
    #: Fields computed from the others, neither saved nor read.
    DERIVED: ClassVar[tuple[str, ...]] = ()

    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` as ``.npz`` (data only, readable with ``allow_pickle=False``),
        atomically."""
        arrays, meta = self._saved()
        return save_npz(path, type(self).__name__, arrays, meta)

    @classmethod
    def load(cls: type[R], path: str | os.PathLike) -> R:
        """Read a result written by :meth:`save`; refuses anything that is not one of this type
        (:class:`~loss_landscape_anim.errors.IncompatibleFileError` naming the file and the
        fault, :class:`~loss_landscape_anim.errors.UnsafeFileError` for a pickle)."""
        arrays, meta = load_npz(path, cls.__name__, arrays=cls.REQUIRED, meta=cls.REQUIRED_META)
        with reading(path):
            return cls._from_saved(arrays, meta)

    def _saved(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(arrays, metadata)`` to write."""
        arrays: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            if field.name in self.DERIVED:
                continue
            value = getattr(self, field.name)
            if field.name in self.ARRAYS:
                arrays[field.name] = value
            else:
                meta[field.name] = as_json(value)
        return arrays, meta

    @classmethod
    def _from_saved(cls: type[R], arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> R:
        """The result of what :meth:`_saved` wrote (a field missing from the file takes its
        default)."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            source = arrays if field.name in cls.ARRAYS else meta
            if field.name in source and field.name not in cls.DERIVED:
                values[field.name] = source[field.name]
        return cls(**values)


def as_json(value: Any) -> Any:
    """``value`` as a JSON value: tuples as lists, numpy scalars as Python numbers (NaN stays a
    float: JSON ``NaN``, which ``json`` reads back)."""
    if isinstance(value, tuple | list):
        return [as_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
