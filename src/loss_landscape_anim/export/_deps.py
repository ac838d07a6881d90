"""Optional packages of the exporters, imported when first used, with what to install when
missing."""

from __future__ import annotations

import importlib
from typing import Any

#: The extra that installs each optional package.
EXTRAS = {
    "h5py": "export",
    "meshio": "export",
    "tensorboard": "export",
    "pyvista": "vtk",
    "wandb": "wandb",
    "plotly": "wandb",
}


def require(module: str, purpose: str) -> Any:
    """Import ``module`` (a dotted name; its top-level package must be in :data:`EXTRAS`), or
    raise ``ImportError`` saying which extra installs it for ``purpose``."""
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{purpose} needs {package}: pip install 'loss-landscape-anim[{EXTRAS[package]}]' "
            f"(or pip install {package})"
        ) from None
