"""Data: the built-in data modules (spirals, MNIST) and the conversion of a user's data (a data
module, ``DataLoader``, ``Dataset`` or ``(X, y)``) into loaders and tensors."""

from .mnist import MNISTDataModule
from .modules import DataModule, SpiralsDataModule, as_dataloader, materialize, split_batch

__all__ = [
    "DataModule",
    "MNISTDataModule",
    "SpiralsDataModule",
    "as_dataloader",
    "materialize",
    "split_batch",
]
