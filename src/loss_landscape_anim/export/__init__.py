"""Where results go next: TensorBoard, Weights & Biases, and 3D surface files (ParaView, Blender,
3D printing). Exporters read results and draw through ``render``; they never compute. Each
exporter's package is optional and imported when first used (the ``[export]``, ``[wandb]`` and
``[vtk]`` extras). HDF5 surfaces in Li et al.'s layout are :meth:`LossGrid.save_h5` and
:meth:`LossGrid.load_h5`."""

from .meshes import MESH_FORMATS, export_surface
from .tensorboard import log_tensorboard
from .wandb import log_wandb

__all__ = ["MESH_FORMATS", "export_surface", "log_tensorboard", "log_wandb"]
