"""GPU benchmark: every figure of the GPU measurements in one command, written as JSON.

Sections (``--section``, repeatable; default: all, in this order):
  grids       compute_loss_grid against the per-point loop (bench_grid.py's), same run,
              interleaved repeat by repeat, with the share of the matmul peak measured in this
              run: LeNet-5 on 60,000 inputs (target >= 5x), ResNet-18 on 10,000 CIFAR-shaped
              inputs in float32 (>= 2x) and with precision="bf16" (>= 5x the float32 loop)
  surface     the reference surface: ResNet-56 (He et al. 2016) on 50,000 CIFAR-shaped inputs, a
              51 x 51 grid, in float32, in bf16, and in bf16 with a 32 GiB memory budget: a share
              of the points is timed (--surface-points, and the section's time budget) and the
              whole surface extrapolated from it, against Li et al.'s 0.7 points/s (51 x 51 in
              60 min on four GTX 1080 Ti) and the goal of 5 minutes (8.7 points/s)
  default_job the default job, loss_landscape_anim(n_epochs=300), on the device (and on the CPU
              in the same run, interleaved, when the device is a GPU); medians and phases
  profile     torch.profiler's top 10 kernels (by device time; CPU time on the CPU) of a LeNet-5
              grid and of a chunk of a ResNet-56 grid
  curvature   the LeNet-5 convexity map (256 inputs, 25 x 25) on the device: time and lambda_max
              against the CPU's on some of the same points
  tests       the project's test suite (python -m pytest) on this machine: pass/fail/skip counts,
              every skip's reason, the failures that name a missing optional package (by
              package) apart from the others, and the test files left out because they import
              a missing package at module level
  levers      channels_last, cudnn.benchmark, bf16, a larger memory budget, the strategy and
              torch.compile (compile time apart), one by one on ResNet-56 and ResNet-18 grids
              against the defaults, each checked against the per-point loop within an error
              estimate; CUDA graphs and channels_last weights are listed as needing a src change

Each section runs inside its own time budget (a section that would run over stops early and
says what it cut) and its own error handler (a failing section records its error and the others
still run); the JSON is rewritten atomically after every section, so a killed run keeps the
sections it finished. ``--quick`` shrinks everything (small inputs, 3 x 3 grids, one repeat) to
check the script on the CPU in a few minutes; its figures are not results.

    python benchmarks/bench_gpu.py --out gpu.json                     # the device run
    python benchmarks/bench_gpu.py --quick --device cpu --out /tmp/x.json
    python benchmarks/bench_gpu.py --section surface --surface-points 128 --out s.json
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import loss_landscape_anim
from gpu_runner import (
    Budget,
    Context,
    Plan,
    Section,
    conv_tf32,
    matmul_tf32,
    release_memory,
    run_sections,
    write_json,
)

__all__ = ["FULL", "QUICK", "Budget", "Plan", "main", "run_sections", "write_json"]

ROOT = Path(__file__).resolve().parent.parent


#: The device run, sized for one H200 inside one 10-minute command: the section budgets add up
#: to 490 s and the whole run stops at 500 s (``gpu_run.sh`` kills it at 540 s), which leaves
#: about a minute of the command for installing the package and starting Python.
FULL = Plan(
    quick=False,
    repeats=3,
    lenet_examples=60_000,
    lenet_resolution=30,
    lenet_loop_points=10,
    resnet18_examples=10_000,
    resnet18_resolution=6,
    resnet18_loop_points=4,
    job_epochs=300,
    surface_examples=50_000,
    surface_resolution=51,
    surface_points=256,
    surface_call_points=8,
    oracle_points=2,
    profile_lenet_examples=10_000,
    profile_resnet_examples=5_000,
    profile_points=2,
    profile_resolution=6,
    lever_models=("resnet56", "resnet18"),
    lever_examples=2_000,
    lever_points=8,
    curvature_examples=256,
    curvature_resolution=25,
    curvature_cpu_points=8,
    curvature_call_points=32,
    tests_args=("tests",),
    budgets={
        "grids": 90,
        "surface": 100,
        "default_job": 25,
        "profile": 25,
        "curvature": 40,
        "tests": 110,
        "levers": 100,
    },
    time_limit=500,
)
#: The check of the script on the CPU: every section on tiny inputs, 3 x 3 grids, one repeat.
QUICK = replace(
    FULL,
    quick=True,
    repeats=1,
    lenet_examples=300,
    lenet_resolution=3,
    lenet_loop_points=2,
    resnet18_examples=8,
    resnet18_resolution=3,
    resnet18_loop_points=1,
    job_epochs=20,
    surface_examples=8,
    surface_resolution=3,
    surface_points=4,
    surface_call_points=2,
    oracle_points=1,
    profile_lenet_examples=200,
    profile_resnet_examples=4,
    profile_points=1,
    profile_resolution=3,
    lever_models=("small",),
    lever_examples=16,
    lever_points=2,
    curvature_examples=32,
    curvature_resolution=3,
    curvature_cpu_points=3,
    curvature_call_points=3,
    tests_args=("tests/test_io.py",),
    budgets={name: 90 for name in FULL.budgets},
    time_limit=None,
)


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine(device: torch.device) -> dict:
    """What ran: the device, torch and CUDA, the settings that change float32 arithmetic."""
    facts: dict[str, Any] = {
        "device": str(device),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "loss_landscape_anim": loss_landscape_anim.__version__,
        "package_file": loss_landscape_anim.__file__,
        "commit": git_commit(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        facts.update(
            gpu=props.name,
            gpu_capability=f"{props.major}.{props.minor}",
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            conv_tf32=conv_tf32(),
            matmul_fp32_precision=getattr(torch.backends.cuda.matmul, "fp32_precision", None),
        )
    return facts


def measure_peaks(device: torch.device, quick: bool) -> dict[str, float]:
    """float32 and bfloat16 GEMM throughput (TFLOP/s) on ``device``, measured now; on a GPU
    also TF32's (float32 inputs on tensor cores: cuDNN's float32 convolutions by default)."""
    from bench_grid import matmul_peak

    repeats = 2 if quick else 5
    peaks = {
        "float32_tflops": matmul_peak(device, repeats=repeats),
        "bfloat16_tflops": matmul_peak(device, repeats=repeats, dtype=torch.bfloat16),
    }
    if device.type == "cuda":  # float32 products on tensor cores, as cuDNN's convolutions run
        with matmul_tf32():
            peaks["tf32_tflops"] = matmul_peak(device, repeats=repeats)
    return peaks


def all_sections() -> dict[str, Section]:
    from gpu_checks import curvature_map, default_job, profile_kernels, run_test_suite
    from gpu_grids import grid_throughput, reference_surface
    from gpu_levers import levers

    return {
        "grids": grid_throughput,
        "default_job": default_job,
        "surface": reference_surface,
        "profile": profile_kernels,
        "levers": levers,
        "curvature": curvature_map,
        "tests": run_test_suite,
    }


#: The sections in the order they run: the levers, whose compile times are the least
#: predictable, last.
SECTION_NAMES = ("grids", "surface", "default_job", "profile", "curvature", "tests", "levers")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a check, not results")
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device, help=f"default {default_device}")
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--section", action="append", choices=SECTION_NAMES, help="default: all")
    parser.add_argument("--tests", action="store_true", help="add the tests section")
    parser.add_argument(
        "--surface-points", type=int, default=None, help="ResNet-56 surface points to time"
    )
    parser.add_argument(
        "--time-limit", type=float, default=None, help="seconds for the whole run (0: none)"
    )
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    if args.surface_points is not None:
        if args.surface_points < 1:
            raise SystemExit(f"--surface-points must be >= 1, got {args.surface_points}")
        plan = replace(plan, surface_points=args.surface_points)
    if args.time_limit is not None:
        plan = replace(plan, time_limit=args.time_limit or None)
    return plan


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    plan = make_plan(args)
    total = Budget(plan.time_limit) if plan.time_limit else None
    names = list(args.section or ([] if args.tests else SECTION_NAMES))
    if args.tests and "tests" not in names:
        names.append("tests")
    device = torch.device(args.device)
    if plan.quick and device.type == "cpu":
        # a check on a small shared machine: a thread team stalls whenever another process
        # holds a core (see the README's "Noise")
        torch.set_num_threads(1)
    report: dict[str, Any] = {
        "schema": 1,
        "command": [sys.executable, *sys.argv],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": plan.quick,
        "note": "--quick: a check that the script runs, not results" if plan.quick else None,
        "plan": asdict(plan),
        "machine": machine(device),
    }
    start = time.perf_counter()
    report["peaks"] = peaks = measure_peaks(device, plan.quick)
    report["peaks_seconds"] = round(time.perf_counter() - start, 2)
    write_json(args.out, report)
    print("\n".join(header(report)), flush=True)
    context = Context(device, plan, peaks)
    chosen = all_sections()
    sections = {name: bind(chosen[name], context) for name in names}
    run_sections(sections, plan.budgets, report, Progress(args.out), total, release_memory)
    report["seconds"] = round(time.perf_counter() - start, 2)
    write_json(args.out, report)
    print(f"total {report['seconds']:.1f} s; {args.out}", flush=True)
    return report


def bind(section: Section, context: Context) -> Callable[[Budget], dict]:
    return lambda budget: section(context, budget)


class Progress:
    """After each section: rewrite the JSON file and print the section's lines (so that a run
    killed at its time limit has shown what it finished)."""

    def __init__(self, path: Path):
        self.path, self.shown = path, 0

    def __call__(self, report: dict) -> None:
        write_json(self.path, report)
        entries = list(report["sections"].items())
        for name, entry in entries[self.shown :]:
            print("\n".join(section_lines(name, entry)), flush=True)
        self.shown = len(entries)


def header(report: dict) -> list[str]:
    m, p = report["machine"], report["peaks"]
    lines = [
        f"{m.get('gpu', m['cpu_capability'])} ({m['device']}), torch {m['torch']}; matmul peak "
        + ", ".join(f"{k.removesuffix('_tflops')} {v:.3g}" for k, v in p.items())
        + " TFLOP/s"
    ]
    if report["quick"]:
        lines.append("--quick: tiny sizes, a check that the script runs, not results")
    return lines


def section_lines(name: str, entry: dict) -> list[str]:
    """A section's status and seconds, then the lines it summarised itself (or its error)."""
    seconds = entry.get("seconds", 0.0)
    lines = [f"[{name}] {entry['status']} in {seconds:.1f} s of {entry['budget_s']:.0f}"]
    if entry["status"] == "error":
        lines.append(f"    {entry['error'][:300]}")
    lines += [f"    {line}" for line in entry.get("result", {}).get("summary", [])]
    return lines


if __name__ == "__main__":
    main()
