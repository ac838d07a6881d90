"""Opt-in reduced precision for evaluating losses: ``precision="bf16"`` or ``"fp16"`` runs the
products under ``torch.autocast`` in that dtype. The default (None) computes in the model's dtype.

bfloat16 keeps float32's range with 8 bits of mantissa (relative rounding 2^-8 per product), so a
loss comes out within a few parts in a thousand of float32's; float16 has 11 bits but a range that
ends at 65,504, and is offered on GPUs only.
"""

from __future__ import annotations

import contextlib
import logging

import torch

__all__ = [
    "PRECISIONS",
    "check_precision",
    "native_cpu_bf16",
    "precision_scope",
    "warn_if_emulated",
]

logger = logging.getLogger(__name__)

#: The reduced precisions, by name.
PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(
    precision: str | None, device: torch.device, model_dtype: torch.dtype
) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (None: none), checked against the device and model."""
    if precision is None:
        return None
    if precision not in PRECISIONS:
        raise ValueError(f"Expected precision to be None, 'bf16' or 'fp16' but got {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError(
            "precision='fp16' is for GPUs; on the CPU use precision='bf16' (fast on CPUs with "
            "AVX-512 BF16 or AMX) or None"
        )
    if model_dtype != torch.float32:
        raise ValueError(
            f"precision={precision!r} reduces a float32 model's products; this model's "
            f"parameters are {str(model_dtype).removeprefix('torch.')}"
        )
    return PRECISIONS[precision]


def warn_if_emulated(device: torch.device, dtype: torch.dtype | None) -> None:
    """Log a warning when bfloat16 products would be emulated (slower than float32)."""
    if dtype == torch.bfloat16 and device.type == "cpu" and not native_cpu_bf16():
        logger.warning(
            "precision='bf16' on a CPU without AVX-512 (capability %s): bfloat16 products are "
            "emulated there and slower than float32 (8x on LeNet-5 on an AVX2 CPU)",
            torch.backends.cpu.get_cpu_capability(),
        )


def native_cpu_bf16() -> bool:
    """Whether torch's CPU kernels have a native bfloat16 path here (AVX-512 or better)."""
    return "AVX512" in torch.backends.cpu.get_cpu_capability()


def precision_scope(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[None]:
    """Autocast to ``dtype`` on ``device`` inside the block (nothing when ``dtype`` is None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
