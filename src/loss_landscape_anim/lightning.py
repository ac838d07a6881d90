"""``loss_landscape_anim.lightning``: :class:`LossLandscapeCallback`, which records the weights of a
Lightning ``Trainer.fit`` as a :class:`~loss_landscape_anim.Trajectory`.

Needs Lightning (``pip install "loss-landscape-anim[lightning]"``); importing this module without
it raises ``ImportError`` saying so.
"""

from .integrations.lightning import LossLandscapeCallback

__all__ = ["LossLandscapeCallback"]
