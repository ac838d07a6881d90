"""``loss_landscape_anim.transformers``: :class:`LossLandscapeCallback`, which records the
trainable weights of a Hugging Face ``Trainer.train()`` as a :class:`~loss_landscape_anim.Trajectory`.

Needs ``transformers`` (``pip install "loss-landscape-anim[transformers]"``); importing this
module without it raises ``ImportError`` saying so.
"""

from .integrations.huggingface import LossLandscapeCallback

__all__ = ["LossLandscapeCallback"]
