"""Memory budgets and sizes: how data batches and chunks of points are cut, in one place.

Every figure here was measured on the benchmarks (``benchmarks/bench_grid.py``,
``benchmarks/bench_curvature.py``); the evaluators read them, the strategies do not.
"""

from __future__ import annotations

import torch

__all__ = [
    "ACTIVATION_OVERHEAD",
    "DEFAULT_CACHE_BUDGET",
    "DEFAULT_HESSIAN_BUDGET",
    "DEFAULT_MEMORY_BUDGET",
    "DEFAULT_WEIGHTS_BUDGET",
    "MIN_SERIAL_BATCH",
    "PRODUCT_OVERHEAD",
    "SERIAL_CHUNK_POINTS",
    "SERIAL_CPU_MEMORY_BUDGET",
    "SMALL_WORK_BYTES",
    "budget_for",
]

#: Default bytes of activations one chunk of points may use, by device type. On the CPU small
#: chunks win: their tensors stay in cache and are recycled by the allocator instead of being
#: freshly mapped (page faults) every time; a GPU wants large launches.
DEFAULT_MEMORY_BUDGET = {"cpu": 16 * 2**20, "cuda": 2**30, "mps": 2**30}
#: Default bytes of activations for points evaluated one at a time on the CPU (models with
#: convolutions): one point's activations over one data batch. Larger batches than the vectorised
#: strategies' cut the operations per point (LeNet-5 on 3,000 inputs: 12.1 points/s with 16 MiB,
#: 15.3 with 64 MiB, the best of 4-128 MiB).
SERIAL_CPU_MEMORY_BUDGET = 64 * 2**20
#: Examples per data batch, at least, for points evaluated one at a time on the CPU: a large
#: model's convolutions are inefficient on a few examples (ResNet-18 on 64 CIFAR-shaped inputs:
#: 0.63 points/s in batches of 21, 0.82 in one batch of 64), whatever the memory budget says.
MIN_SERIAL_BATCH = 64
#: Default bytes of first-layer outputs kept for a whole job (all data batches), by device type.
DEFAULT_CACHE_BUDGET = {"cpu": 512 * 2**20, "cuda": 4 * 2**30, "mps": 2**30}
#: Default bytes of activations one call of Hessian-vector products may use, by device type.
#: Larger than the loss grid's on the CPU: each Lanczos step is a short call per chunk of
#: points, whose fixed cost is better shared by more points.
DEFAULT_HESSIAN_BUDGET = {"cpu": 128 * 2**20, "cuda": 2**30, "mps": 2**30}
#: Activations of a loss evaluation are counted this many times over, for the temporaries of the
#: backward-free forward pass.
ACTIVATION_OVERHEAD = 2
#: Activation bytes of a forward pass counted this many times over for a Hessian-vector product
#: (the forward and backward passes and their perturbations, and what is kept between them).
PRODUCT_OVERHEAD = 8
#: With ``num_threads="auto"`` on the CPU, evaluations whose forward pass over one data batch
#: touches fewer activation bytes than this run on one thread: their operations are too short to
#: gain from a thread team, which stalls for a whole scheduler time slice whenever another process
#: holds a core.
SMALL_WORK_BYTES = 8 * 2**20
#: Points per chunk, at least, when points are evaluated one at a time: a data batch's cached
#: first-layer maps are then read by this many points while they are in cache.
SERIAL_CHUNK_POINTS = 8
#: Default bytes of the weight vectors of one chunk of points (K x P values), by device type: a
#: large model's points are big themselves (GPT-2 small: 0.5 GB each in float32).
DEFAULT_WEIGHTS_BUDGET = {"cpu": 512 * 2**20, "cuda": 4 * 2**30, "mps": 2**30}
#: The budget for a device type missing from a table above.
_OTHER_DEVICE = 2**28


def budget_for(table: dict[str, int], device: torch.device) -> int:
    """The budget of ``table`` for ``device``'s type."""
    return table.get(device.type, _OTHER_DEVICE)
