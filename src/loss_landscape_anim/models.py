"""Models: the ``GenericModel`` base class users subclass, and the built-in ``MLP``, ``LeNet`` and
``TinyGPT``.

``GenericModel`` keeps the seed package's keyword interface (``optimizer``, ``learning_rate``,
``custom_optimizer``, ``gpus``, ``num_classes``) on a plain ``torch.nn.Module``: no Lightning needed.
"""

from __future__ import annotations

import math

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

__all__ = ["MLP", "GenericModel", "LeNet", "TinyGPT"]


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


class TinyGPT(GenericModel):
    """A decoder-only transformer (GPT: Radford et al. 2018, on the architecture of Vaswani et al.
    2017, "Attention is all you need"), written with plain ``torch.nn``: token and position
    embeddings, ``n_layers`` pre-norm blocks of causal multi-head self-attention and a GELU MLP,
    a final layer norm and a linear head. 227,724 parameters with the defaults (vocabulary 12,
    width 96, 2 layers): a 60 x 60 grid of its loss on the CPU takes under a minute.

    It takes its inputs by name, as a Hugging Face causal language model does:
    ``model(input_ids, attention_mask=None)`` returns the next-token logits (N, L, vocab_size);
    with batches ``{"input_ids", "labels"}`` (:class:`SequenceDataModule`'s) its loss is the
    mean cross-entropy over the label tokens, shifted by one. Attention is written out (scores,
    causal mask, softmax) rather than fused, so ``torch.vmap`` evaluates many weight vectors of a
    grid in one pass.

    Args:
        vocab_size: tokens (default: :class:`SequenceDataModule`'s 12).
        max_length: the longest sequence (positions).
        width: the embedding width (a multiple of ``n_heads``).
        n_layers: transformer blocks.
        n_heads: attention heads per block.
        learning_rate, optimizer: how :func:`train` trains it by default (Adam, 3e-3).
    """

    def __init__(
        self,
        vocab_size: int = 12,
        max_length: int = 16,
        width: int = 96,
        n_layers: int = 2,
        n_heads: int = 4,
        learning_rate: float = 3e-3,
        optimizer: OptimizerSpec = "adam",
    ):
        super().__init__(optimizer, learning_rate)
        for value, name in ((vocab_size, "vocab_size"), (max_length, "max_length")):
            check_positive_int(value, name)
        check_positive_int(n_layers, "n_layers")
        check_positive_int(n_heads, "n_heads")
        if check_positive_int(width, "width") % n_heads:
            raise ValueError(
                f"Expected width to be a multiple of n_heads={n_heads} but got {width}"
            )
        self.tokens = nn.Embedding(vocab_size, width)
        self.positions = nn.Embedding(max_length, width)
        self.blocks = nn.ModuleList(_Block(width, n_heads) for _ in range(n_layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size)
        self.max_length = max_length

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Next-token logits (N, L, vocab_size) of token ids (N, L); ``attention_mask`` (N, L):
        1 for tokens, 0 for padding that no token attends to."""
        length = input_ids.shape[1]
        if length > self.max_length:
            raise ValueError(
                f"Expected sequences of at most max_length={self.max_length} tokens but got "
                f"{length}"
            )
        h = self.tokens(input_ids) + self.positions.weight[:length]
        blocked = torch.ones(length, length, dtype=torch.bool, device=h.device).triu(1)
        if attention_mask is not None:
            blocked = blocked | (attention_mask[:, None, None, :] == 0)
        for block in self.blocks:
            h = block(h, blocked)
        return self.head(self.norm(h))


class _Block(nn.Module):
    """Pre-norm causal self-attention and MLP, each with a residual connection."""

    def __init__(self, width: int, n_heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )
        self.n_heads = n_heads

    def forward(self, h: torch.Tensor, blocked: torch.Tensor) -> torch.Tensor:
        n, length, width = h.shape
        q, k, v = self.qkv(self.norm1(h)).split(width, dim=2)
        heads = (n, length, self.n_heads, width // self.n_heads)
        q, k, v = (t.reshape(heads).transpose(1, 2) for t in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(width // self.n_heads)
        weights = _softmax(scores.masked_fill(blocked, float("-inf")))
        mixed = (weights @ v).transpose(1, 2).reshape(n, length, width)
        h = h + self.proj(mixed)
        return h + self.mlp(self.norm2(h))


def _softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension, written out: for the short rows of short sequences,
    torch's CPU kernel takes about 7 times as long (1.5 ms against 0.2 ms for 256 x 4 x 9 x 9).
    Masked scores are -inf (whose exponential is 0 at once; a large finite negative takes the
    slow path of ``exp``); a row with every key masked (a padded first token) gives zeros."""
    top = scores.amax(dim=-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).min)
    e = (scores - top).exp()
    return e / e.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)
