"""The harness of ``bench_gpu.py``: time budgets, the plan of sizes, the section runner that
records a failing section's error and goes on, and the atomic JSON writer."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from loss_landscape_anim._io import atomic_path


class Budget:
    """Seconds a section may use, counted from its construction."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter):
        self.seconds, self.clock, self.start = float(seconds), clock, clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def fits(self, estimate_s: float) -> bool:
        """Whether a step estimated to take ``estimate_s`` seconds ends inside the budget."""
        return self.elapsed() + estimate_s <= self.seconds


@dataclass(frozen=True)
class Plan:
    """The sizes of every section: the device run's, or ``--quick``'s (see ``FULL``, ``QUICK``)."""

    quick: bool
    repeats: int
    lenet_examples: int
    lenet_resolution: int
    lenet_loop_points: int
    resnet18_examples: int
    resnet18_resolution: int
    resnet18_loop_points: int
    job_epochs: int
    surface_examples: int
    surface_resolution: int
    surface_points: int
    surface_call_points: int
    oracle_points: int
    profile_lenet_examples: int
    profile_resnet_examples: int
    profile_points: int
    profile_resolution: int
    lever_models: tuple[str, ...]
    lever_examples: int
    lever_points: int
    curvature_examples: int
    curvature_resolution: int
    curvature_cpu_points: int
    curvature_call_points: int
    tests_args: tuple[str, ...]
    #: seconds per section; the whole run also stops at ``time_limit`` (None: no limit)
    budgets: Mapping[str, float] = field(default_factory=dict)
    time_limit: float | None = None


@dataclass
class Context:
    """What every section gets: the device, the plan and the peaks measured at the start."""

    device: torch.device
    plan: Plan
    peaks: dict[str, float]


Section = Callable[[Context, Budget], dict]


def run_sections(
    sections: Mapping[str, Callable[[Budget], dict]],
    budgets: Mapping[str, float],
    report: dict,
    write: Callable[[dict], None],
    total: Budget | None = None,
    cleanup: Callable[[], None] = lambda: None,
) -> dict:
    """Run each section with a :class:`Budget` of its ``budgets`` seconds (less if ``total`` has
    less left), recording in ``report["sections"][name]`` its status (``"ok"``, ``"error"`` with
    the error and its traceback, or ``"skipped"`` when no time is left), its seconds and its
    result; ``write(report)`` after every section, whatever happened in it."""
    entries = report.setdefault("sections", {})
    for name, section in sections.items():
        seconds = budgets[name] if total is None else min(budgets[name], total.left())
        entry: dict[str, Any] = {"budget_s": round(max(seconds, 0.0), 1)}
        entries[name] = entry
        if seconds <= 0:
            entry.update(status="skipped", reason="the run's time limit was spent")
            write(report)
            continue
        start = time.perf_counter()
        try:
            entry["result"] = section(Budget(seconds))
            entry["status"] = "ok"
        except Exception as exc:
            entry.update(
                status="error",
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )
        finally:
            entry["seconds"] = round(time.perf_counter() - start, 2)
            cleanup()
            write(report)
    return report


def to_json(value: Any) -> Any:
    """``value`` with numpy scalars and arrays, tuples and paths made plain JSON values."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path | torch.device | torch.dtype):
        return str(value)
    return value


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically: a kill mid-write keeps the previous file."""
    text = json.dumps(to_json(data), indent=2)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def release_memory() -> None:
    """Drop what the last step left: Python's garbage, and the GPU's cached blocks."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def conv_tf32() -> bool:
    """Whether cuDNN runs float32 convolutions on TF32 tensor cores: torch's ``fp32_precision``
    settings where this torch has them (``cudnn.conv``, else its parents), else the older
    ``torch.backends.cudnn.allow_tf32`` (the two are not to be mixed)."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    for holder in (conv, torch.backends.cudnn, torch.backends):
        value = getattr(holder, "fp32_precision", None)
        if value is None:
            break
        if value != "none":
            return value == "tf32"
    return bool(torch.backends.cudnn.allow_tf32)


@contextlib.contextmanager
def matmul_tf32() -> Iterator[None]:
    """float32 matrix products on TF32 tensor cores inside the block (restored after)."""
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        before = matmul.fp32_precision
        matmul.fp32_precision = "tf32"
        try:
            yield
        finally:
            matmul.fp32_precision = before
        return
    legacy = matmul.allow_tf32
    matmul.allow_tf32 = True
    try:
        yield
    finally:
        matmul.allow_tf32 = legacy
