"""The package's own exception types. Each subclasses the built-in type that fits, so callers that
catch ``ValueError`` keep working."""

from __future__ import annotations

__all__ = ["DataError", "DivergenceWarning", "IncompatibleFileError", "UnsafeFileError"]


class DataError(ValueError):
    """The training or evaluation data cannot be used (empty, wrong shape, labels out of range)."""


class IncompatibleFileError(ValueError):
    """A saved file does not belong to this model or this kind of result."""


class UnsafeFileError(ValueError):
    """A file is not in the data-only format we write (for example a pickle); it was not loaded."""


class DivergenceWarning(RuntimeWarning):
    """Training reached non-finite weights or losses; the animation stops where values were finite."""
