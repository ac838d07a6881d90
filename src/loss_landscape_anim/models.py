"""Models: the ``GenericModel`` base class users subclass, and the built-in ``MLP`` and ``LeNet``.

``GenericModel`` keeps the seed package's keyword interface (``optimizer``, ``learning_rate``,
``custom_optimizer``, ``gpus``, ``num_classes``) on a plain ``torch.nn.Module``: no Lightning needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_positive_int, check_positive_number
from .losses import cross_entropy_loss
from .optimizers import (
    OptimizerSpec,
    check_optimizer_spec,
    make_optimizer,
    resolve_optimizer,
)

__all__ = ["MLP", "GenericModel", "LeNet"]


class GenericModel(nn.Module):
    """Base class for models to animate.

    Subclasses define ``forward``; they may override ``loss_fn(y_pred, y)`` (cross-entropy by
    default) and ``as_sequential()``, which returns an ``nn.Sequential`` that computes exactly what
    ``forward`` computes, so the loss grid can evaluate the first layer once per direction instead
    of once per grid point.

    Args:
        optimizer: ``"adam"``, ``"sgd"``, ``"adagrad"`` or ``"rmsprop"``.
        learning_rate: step size (> 0).
        custom_optimizer: a ``torch.optim.Optimizer`` class or factory ``f(params, lr=...)``;
            overrides ``optimizer`` when given.
        gpus: number of GPUs to train on (0 or 1).
        num_classes: number of output classes, when the model is a classifier.
    """

    def __init__(
        self,
        optimizer: OptimizerSpec = "adam",
        learning_rate: float = 1e-3,
        custom_optimizer: OptimizerSpec | None = None,
        gpus: int = 0,
        num_classes: int | None = None,
    ):
        super().__init__()
        self.optimizer = check_optimizer_spec(optimizer)
        self.learning_rate = check_positive_number(learning_rate, "learning_rate")
        self.custom_optimizer = (
            None if custom_optimizer is None else check_optimizer_spec(custom_optimizer)
        )
        self.gpus = check_positive_int(gpus, "gpus", allow_zero=True)
        self.num_classes = (
            None if num_classes is None else check_positive_int(num_classes, "num_classes")
        )

    @cross_entropy_loss
    def loss_fn(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean loss of predictions ``y_pred`` against targets ``y`` (cross-entropy)."""
        return F.cross_entropy(y_pred, y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """The optimizer this model trains with by default."""
        return make_optimizer(*resolve_optimizer(self), model=self)

    def as_sequential(self) -> nn.Sequential | None:
        """An ``nn.Sequential`` equivalent to ``forward`` sharing this model's parameters, or None."""
        return None


class MLP(GenericModel):
    """A multilayer perceptron with ReLU hidden layers.

    Args:
        input_dim: number of input features.
        num_classes: number of output classes (logits).
        learning_rate: step size (> 0).
        num_hidden_layers: number of hidden layers (>= 1).
        hidden_dim: width of each hidden layer.
    """

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        learning_rate: float = 5e-3,
        num_hidden_layers: int = 1,
        hidden_dim: int = 50,
        optimizer: OptimizerSpec = "adam",
        custom_optimizer: OptimizerSpec | None = None,
        gpus: int = 0,
    ):
        super().__init__(optimizer, learning_rate, custom_optimizer, gpus, num_classes)
        input_dim = check_positive_int(input_dim, "input_dim")
        check_positive_int(num_hidden_layers, "num_hidden_layers")
        check_positive_int(hidden_dim, "hidden_dim")
        layers: list[nn.Module] = []
        width = input_dim
        for _ in range(num_hidden_layers):
            layers += [nn.Linear(width, hidden_dim), nn.ReLU()]
            width = hidden_dim
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))

    def as_sequential(self) -> nn.Sequential:
        return nn.Sequential(nn.Flatten(), *self.layers)


class LeNet(GenericModel):
    """LeNet-5 (LeCun et al. 1998) on 1 x 32 x 32 images: two 5x5 convolutions with max pooling,
    then three fully connected layers (120, 84, ``num_classes``), ReLU activations."""

    def __init__(
        self,
        learning_rate: float = 1e-3,
        num_classes: int = 10,
        optimizer: OptimizerSpec = "adam",
        custom_optimizer: OptimizerSpec | None = None,
        gpus: int = 0,
    ):
        super().__init__(optimizer, learning_rate, custom_optimizer, gpus, num_classes)
        self.layers = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def as_sequential(self) -> nn.Sequential:
        return self.layers
