"""Shared test set-up, run before any test module imports matplotlib or trains a model."""

from __future__ import annotations

import os

# Headless rendering: choose the backend before anything imports matplotlib.
os.environ.setdefault("MPLBACKEND", "Agg")

import torch

# The test models are tiny: with several intra-op threads on a small shared machine, thread
# hand-offs cost more than the arithmetic (about 3x slower here). OMP_NUM_THREADS overrides this.
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)
