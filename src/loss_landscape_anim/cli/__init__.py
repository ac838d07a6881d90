"""The ``loss-landscape-anim`` command (see :func:`main`). It knows only the pipeline."""

from .arguments import PROG, build_parser
from .main import main

__all__ = ["PROG", "build_parser", "main"]
