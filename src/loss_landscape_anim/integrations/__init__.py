"""Integrations at the edge: Lightning (a callback that records ``Trainer.fit``). Nothing in the
core imports them at module level, and each imports its dependency only when used. (Grids shared
by the ranks of a ``torchrun`` job are part of the evaluation engine: see
:mod:`loss_landscape_anim.evaluate.ranks`.)"""
