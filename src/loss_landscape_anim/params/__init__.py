"""Flat parameter vectors: their layout, the row store that records them, the block readers that
stream over them, and model weights on disk."""

from .layout import ParamLayout, flatten_params

__all__ = ["ParamLayout", "flatten_params"]
