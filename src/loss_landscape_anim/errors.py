"""The package's own exception types. Each subclasses the built-in type that fits, so callers that
catch ``ValueError`` keep working."""

from __future__ import annotations

__all__ = [
    "PACKAGE_ERRORS",
    "ConvergenceError",
    "DataError",
    "DivergenceWarning",
    "IncompatibleFileError",
    "UnsafeFileError",
]


class DataError(ValueError):
    """The training or evaluation data cannot be used (empty, wrong shape, labels out of range)."""


class IncompatibleFileError(ValueError):
    """A saved file does not belong to this model or this kind of result."""


class UnsafeFileError(ValueError):
    """A file is not in the data-only format we write (for example a pickle); it was not loaded."""


class DivergenceWarning(RuntimeWarning):
    """Training reached non-finite weights or losses; the animation stops where values were finite."""


class ConvergenceError(RuntimeError):
    """An iterative solver (an eigensolver) stopped at its iteration limit before reaching the
    tolerance asked for; the message says which limit and tolerance to raise."""


#: The package's own errors: what a user's input or files caused, never a bug.
PACKAGE_ERRORS: tuple[type[Exception], ...] = (
    DataError,
    IncompatibleFileError,
    UnsafeFileError,
    ConvergenceError,
)
