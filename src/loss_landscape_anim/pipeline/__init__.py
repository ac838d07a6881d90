"""The pipeline: the one-call API with the seed package's signature and the optimizer comparison,
both built on the same validated options and shared steps. Only the CLI imports this."""

from .compare import Comparison, compare_optimizers
from .one_call import loss_landscape_anim

__all__ = ["Comparison", "compare_optimizers", "loss_landscape_anim"]
