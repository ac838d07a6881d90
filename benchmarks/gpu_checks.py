"""The other sections of ``bench_gpu.py``: the default job end to end, the profiler's top kernels,
the LeNet-5 convexity map on the device against the CPU, and the test suite on this machine."""

from __future__ import annotations

import ast
import functools
import importlib.util
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import loss_landscape_anim
from bench_curvature import grid_coords, lenet_setup
from bench_end_to_end import PHASE_LINE
from bench_grid import lenet_job, resnet_job
from gpu_grids import evaluator_facts, spread, timed
from gpu_runner import Budget, Context
from loss_landscape_anim import compute_loss_grid
from loss_landscape_anim.analysis.curvature_grid import DEFAULT_CURVATURE_TOL
from loss_landscape_anim.evaluate import CurvatureEvaluator, LossEvaluator
from resnets import resnet56

ROOT = Path(__file__).resolve().parent.parent
STAGES_LOGGER = "loss_landscape_anim.pipeline.stages"
#: Kernels (or operators, on the CPU) listed per profile.
TOP_KERNELS = 10

# -- b: the default job ---------------------------------------------------------------------


class PhaseLog(logging.Handler):
    """Collects the phase times the pipeline logs ("training took 0.24 s")."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.phases: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = PHASE_LINE.match(f"{record.name}: {record.getMessage()}")
        if match:
            self.phases[match["phase"]] = float(match["s"])


def run_default_job(device: torch.device, epochs: int) -> dict:
    """``loss_landscape_anim(n_epochs=epochs, seed=0)`` on ``device`` in an empty folder."""
    logger, handler = logging.getLogger(STAGES_LOGGER), PhaseLog()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-gpu-job-") as folder:
            start = time.perf_counter()
            animation = loss_landscape_anim.loss_landscape_anim(
                n_epochs=epochs,
                seed=0,
                progress=False,
                device=device,
                model_dirpath=folder,
                output_filename=Path(folder) / "sample.gif",
            )
            seconds = time.perf_counter() - start
            if not isinstance(animation, loss_landscape_anim.Animation):
                raise TypeError(f"Expected an Animation but got {type(animation).__name__}")
            frames = animation.n_frames
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return {"seconds": seconds, "phases": handler.phases, "frames": frames}


def default_job(ctx: Context, budget: Budget) -> dict:
    """The default job on the device, and on the CPU in the same run when the device is a GPU
    (interleaved repeat by repeat): medians of the call and of each phase."""
    devices = [ctx.device] + ([torch.device("cpu")] if ctx.device.type != "cpu" else [])
    runs: dict[str, list[dict]] = {str(d): [] for d in devices}
    cut = None
    for _ in range(ctx.plan.repeats):
        for device in devices:
            done = runs[str(device)]
            if done and not budget.fits(statistics.median(r["seconds"] for r in done)):
                cut = "fewer repeats than planned: the budget was spent"
                break
            done.append(run_default_job(device, ctx.plan.job_epochs))
    out: dict[str, Any] = {"epochs": ctx.plan.job_epochs, "summary": []}
    for name, done in runs.items():
        phases = {
            p: statistics.median(r["phases"].get(p, 0.0) for r in done) for p in done[0]["phases"]
        }
        out[name] = {
            "seconds": statistics.median(r["seconds"] for r in done),
            "repeats": len(done),
            "frames": done[0]["frames"],
            "phases": phases,
        }
        shown = ", ".join(f"{p} {s:.2f}" for p, s in phases.items())
        out["summary"].append(f"default job on {name}: {out[name]['seconds']:.2f} s ({shown})")
    if len(devices) > 1:
        out["cpu_over_device"] = out["cpu"]["seconds"] / out[str(ctx.device)]["seconds"]
    if cut:
        out["cut"] = cut
    return out


# -- d: the profile -------------------------------------------------------------------------


def top_kernels(fn: Callable[[], Any], device: torch.device) -> dict:
    """``torch.profiler``'s top kernels of ``fn()`` by self device time (on the CPU, operators
    by self CPU time), with their share of the total."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    events = prof.key_averages()
    key = "self_cpu_time_total"
    if device.type == "cuda":
        key = (
            "self_device_time_total"
            if hasattr(events[0], "self_device_time_total")
            else "self_cuda_time_total"
        )
    total = sum(getattr(e, key) for e in events) or 1.0
    ranked = sorted(events, key=lambda e: getattr(e, key), reverse=True)[:TOP_KERNELS]
    return {
        "by": key,
        "total_ms": total / 1e3,
        "top": [
            {
                "name": e.key,
                "calls": e.count,
                "self_ms": getattr(e, key) / 1e3,
                "share": getattr(e, key) / total,
            }
            for e in ranked
        ],
    }


def profile_kernels(ctx: Context, budget: Budget) -> dict:
    """The top kernels of a LeNet-5 grid (after a warm-up grid) and of one call of ResNet-56
    points (after a warm-up call), each profiled once."""
    device, plan = ctx.device, ctx.plan
    lenet = lenet_job(plan.profile_lenet_examples, plan.profile_resolution, 0)

    def lenet_grid() -> object:
        return compute_loss_grid(
            lenet.model, (lenet.X, lenet.y), lenet.plane, resolution=lenet.resolution,
            device=device, progress=False,
        )  # fmt: skip

    lenet_grid()
    out: dict[str, Any] = {"lenet": {"examples": len(lenet.X), "grid": lenet.resolution}}
    out["lenet"].update(top_kernels(lenet_grid, device))
    out["summary"] = [profile_line("LeNet-5 grid", out["lenet"])]
    if budget.left() <= 0:
        out["cut"] = "ResNet-56 not profiled: the budget was spent"
        return out
    job = resnet_job(plan.profile_resnet_examples, 5, 0, resnet56, "ResNet-56")
    coords = grid_coords(job.plane, 5)[spread(25, plan.profile_points)]
    evaluator = LossEvaluator(job.model, (job.X, job.y), device=device)
    origin, directions = job.plane.origin, job.plane.directions
    evaluator.plane_losses(origin, directions, coords)
    out["resnet56"] = {"examples": len(job.X), "points": len(coords)}
    out["resnet56"].update(evaluator_facts(evaluator, len(coords)))
    out["resnet56"].update(
        top_kernels(lambda: evaluator.plane_losses(origin, directions, coords), device)
    )
    out["summary"].append(profile_line("ResNet-56 chunk", out["resnet56"]))
    return out


def profile_line(label: str, r: dict) -> str:
    top = ", ".join(f"{k['name'][:40]} {100 * k['share']:.0f}%" for k in r["top"][:3])
    return f"{label} ({r['total_ms']:.1f} ms by {r['by']}): {top}"


# -- f: curvature ---------------------------------------------------------------------------


def curvature_map(ctx: Context, budget: Budget) -> dict:
    """The LeNet-5 convexity map (batched Lanczos, tol 1e-3, seeded start vector) on the
    device: first the ``curvature_cpu_points`` points spread over the grid that the CPU then
    computes too (and, on a GPU, the convolutional products there as well), then the other
    points in calls of ``curvature_call_points`` until done or out of budget."""
    device, plan = ctx.device, ctx.plan
    model, data, plane = lenet_setup(plan.quick)
    coords = grid_coords(plane, plan.curvature_resolution)
    compared = spread(len(coords), plan.curvature_cpu_points)
    rest = np.setdiff1d(np.arange(len(coords)), compared)
    settings: dict[str, Any] = {"method": "lanczos", "tol": DEFAULT_CURVATURE_TOL, "seed": 0}

    def extremes(evaluator: CurvatureEvaluator, points: np.ndarray) -> Any:
        return evaluator.plane_extremes(plane.origin, plane.directions, points, **settings)

    build_s, evaluator = timed(lambda: CurvatureEvaluator(model, data, device=device), device)
    first_s, _ = timed(lambda: extremes(evaluator, coords[compared[:1]]), device)
    seconds, found = timed(lambda: extremes(evaluator, coords[compared]), device)
    largest, done = [found.largest], len(compared)
    cpu = CurvatureEvaluator(model, data)
    cpu_s, on_cpu = timed(lambda: extremes(cpu, coords[compared]), torch.device("cpu"))
    conv = {}
    if device.type == "cuda":
        conv_evaluator = CurvatureEvaluator(model, data, device=device, products="conv")
        extremes(conv_evaluator, coords[compared[:1]])
        conv_s, _ = timed(lambda: extremes(conv_evaluator, coords[compared]), device)
        conv = {"conv_products_s_per_point": conv_s / len(compared)}
    last = seconds / len(compared)
    for start in range(0, len(rest), plan.curvature_call_points):
        chunk = coords[rest[start : start + plan.curvature_call_points]]
        if not budget.fits(last * len(chunk)):
            break
        dt, found = timed(functools.partial(extremes, evaluator, chunk), device)
        largest.append(found.largest)
        done, seconds, last = done + len(chunk), seconds + dt, dt / len(chunk)
    on_device = np.concatenate(largest)
    diff = np.abs(on_device[: len(compared)] - on_cpu.largest) / np.abs(on_cpu.largest)
    out: dict[str, Any] = {
        "examples": int(data[0].shape[0]),
        "grid": [plan.curvature_resolution] * 2,
        "products": {
            "device": type(evaluator.products).__name__,
            "cpu": type(cpu.products).__name__,
        },
        "build_s": build_s,
        "first_call_s": first_s,
        "points_done": done,
        "s_per_point": seconds / done,
        "map_s": seconds * len(coords) / done,
        "map_s_is_extrapolated": done < len(coords),
        "lambda_max_range": [float(on_device.min()), float(on_device.max())],
        "cpu_points": len(compared),
        "cpu_s_per_point": cpu_s / len(compared),
        "cpu": "the CPU on the same points, in this run, torch's default threads",
        **conv,
        "lambda_max_max_rel_diff": float(diff.max()),
        "tolerance": 2 * DEFAULT_CURVATURE_TOL,
    }
    out["within_tolerance"] = out["lambda_max_max_rel_diff"] <= out["tolerance"]
    if done < len(coords):
        out["cut"] = f"{done} of {len(coords)} points: the map's time is extrapolated"
    out["summary"] = [
        f"LeNet-5 convexity map {plan.curvature_resolution}^2 on {device}: {out['map_s']:.1f} s "
        f"({out['s_per_point'] * 1e3:.0f} ms/point, {done} points timed); CPU "
        f"{out['cpu_s_per_point'] * 1e3:.0f} ms/point; lambda_max max rel diff "
        f"{out['lambda_max_max_rel_diff']:.1e} (tol {out['tolerance']:.0e})"
    ]
    return out


# -- g: the tests ---------------------------------------------------------------------------


def top_level_imports(path: Path) -> set[str]:
    """The top-level packages a test module imports at module level (not inside functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def missing_imports(tests: Path) -> dict[str, list[str]]:
    """Test files whose module-level imports are not installed here (they would fail to be
    collected), with the missing packages; the suite's own helper modules count as installed."""
    local = {p.stem for p in tests.rglob("*.py")}
    found: dict[str, list[str]] = {}
    for path in sorted(tests.rglob("test_*.py")):
        missing = sorted(name for name in top_level_imports(path) - local if not installed(name))
        if missing:
            found[str(path.relative_to(tests.parent))] = missing
    return found


def run_test_suite(ctx: Context, budget: Budget) -> dict:
    """``python -m pytest`` on this machine (files that cannot be imported here left out and
    listed), its counts and every skip's reason, from its JUnit XML."""
    left_out = missing_imports(ROOT / "tests")
    with tempfile.TemporaryDirectory(prefix="bench-gpu-tests-") as folder:
        xml = Path(folder) / "junit.xml"
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--maxfail=100",
            f"--junitxml={xml}", *(f"--ignore={path}" for path in left_out), *ctx.plan.tests_args,
        ]  # fmt: skip
        env = dict(os.environ, MPLBACKEND="Agg")
        try:
            done = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=budget.left()
            )
        except subprocess.TimeoutExpired as exc:
            tail = exc.stdout or ""
            text = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
            return {
                "cut": f"pytest stopped at the budget's end ({budget.seconds:.0f} s)",
                "stdout_tail": text[-3000:],
                "left_out_missing_imports": left_out,
            }
        out = junit_counts(xml) if xml.exists() else {}
    out.update(
        command=command[1:],
        exit_code=done.returncode,
        left_out_missing_imports=left_out,
        stdout_tail=done.stdout[-3000:],
        stderr_tail=done.stderr[-2000:],
    )
    counts = ", ".join(f"{out.get(k, 0)} {k}" for k in ("passed", "failed", "errors", "skipped"))
    out["summary"] = [f"pytest exit {done.returncode}: {counts}; {len(left_out)} files left out"]
    out["summary"] += [
        f"skipped: {reason} ({n})" for reason, n in out.get("skip_reasons", {}).items()
    ]
    out["summary"] += [
        f"failed for want of {name}: {len(ids)} tests"
        for name, ids in out.get("failed_for_missing_package", {}).items()
    ]
    out["summary"] += [f"failed: {name}" for name in out.get("failures", [])[:10]]
    return out


#: How a test's failure names an optional package it lacked: an import that failed, or one of
#: the package's own messages ("interactive_surface needs plotly: ...", "Writing MP4 needs
#: ffmpeg: ...").
MISSING_PACKAGE = re.compile(r"No module named '(\w+)|\bneeds ([\w-]+): ")


def skip_reason(case: ET.Element, skipped: ET.Element) -> str:
    """A skip's reason; for a whole module skipped at collection, the module and its reason."""
    message = skipped.get("message", "")
    found = re.search(r"Skipped: (.*?)[\"']\)\s*$", skipped.text or "")
    if message == "collection skipped" and found:
        return f"{case.get('name')} (the whole module): {found[1]}"
    return message


def junit_counts(path: Path) -> dict:
    """Passed, failed, errors and skipped tests of a JUnit XML report; the skip reasons counted;
    the failures that name a missing optional package, by package; the other failures."""
    root = ET.parse(path).getroot()
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    missing: dict[str, list[str]] = {}
    failures = []
    for case in root.iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        outcome = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            counts["passed"] += 1
        elif outcome.tag == "skipped":
            counts["skipped"] += 1
            reasons[skip_reason(case, outcome)] += 1
        else:
            counts["failed" if outcome.tag == "failure" else "errors"] += 1
            found = MISSING_PACKAGE.search(f"{outcome.get('message', '')}\n{outcome.text or ''}")
            if found:
                missing.setdefault(found[1] or found[2], []).append(test_id)
            else:
                failures.append(f"{test_id}: {outcome.get('message', '')[:300]}")
    return {
        **counts,
        "skip_reasons": dict(reasons),
        "failed_for_missing_package": missing,
        "failures": failures,
    }
