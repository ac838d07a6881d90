"""Integrations at the edge: ``torch.distributed`` (grids shared by the ranks of a ``torchrun``
job) and Lightning (a callback that records ``Trainer.fit``). Nothing in the core imports them at
module level, and each imports its dependency only when used."""
