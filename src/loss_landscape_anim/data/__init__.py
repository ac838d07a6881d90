"""Data: the built-in data modules (spirals, MNIST, token sequences), the forms a batch takes
(``(x, y)`` pairs, or dicts of named inputs and ``labels``) and the conversion of a user's data
(a data module, ``DataLoader``, ``Dataset`` or ``(X, y)``) into loaders and tensors."""

from .batches import Inputs, split_batch
from .mnist import MNISTDataModule
from .modules import DataModule, NamedDataset, SpiralsDataModule, as_dataloader, materialize
from .sequences import SequenceDataModule

__all__ = [
    "DataModule",
    "Inputs",
    "MNISTDataModule",
    "NamedDataset",
    "SequenceDataModule",
    "SpiralsDataModule",
    "as_dataloader",
    "materialize",
    "split_batch",
]
