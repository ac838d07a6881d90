"""The loss-grid sections of ``bench_gpu.py``: throughput against the per-point loop and the
ResNet-56 reference surface, and what the other sections share (the oracle's tolerance, timing).
The jobs, the loop, the timing and the FLOP counts are ``bench_grid.py``'s."""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from bench_curvature import grid_coords
from bench_grid import Job, bench_job, lenet_job, reference_loop, resnet_job, synchronize
from gpu_runner import Budget, Context, conv_tf32
from loss_landscape_anim.evaluate import LossEvaluator
from loss_landscape_anim.evaluate.budgets import DEFAULT_MEMORY_BUDGET, budget_for
from resnets import resnet, resnet18, resnet56

#: Unit roundoff of the formats products are rounded to: float32, TF32 (cuDNN's float32
#: convolutions on Ampere and later, torch's default: see ``gpu_runner.conv_tf32``),
#: bfloat16 (``precision="bf16"``).
UNIT_ROUNDOFF = {"float32": 2.0**-24, "tf32": 2.0**-11, "bfloat16": 2.0**-8}
#: Headroom over the error estimate.
SAFETY = 4.0
#: Li et al.'s reference code: a 51 x 51 surface in 60 minutes on four GTX 1080 Ti.
ANCHOR: dict[str, Any] = {
    "points": 51 * 51,
    "seconds": 3600.0,
    "gpus": "4 x GTX 1080 Ti (Li et al.)",
}
#: The goal: the whole 51 x 51 surface in 5 minutes in bf16 on one GPU.
GOAL_SECONDS = 300.0
#: The larger memory budget of the surface's third variant on a GPU (bytes of activations).
SURFACE_MEMORY_BUDGET = 32 * 2**30
#: The grid cases: (label, job, precision, target speedup over the float32 loop).
GRID_CASES = (
    ("LeNet-5 60k float32", "lenet", None, 5.0),
    ("ResNet-18 float32", "resnet18", None, 2.0),
    ("ResNet-18 bf16", "resnet18", "bf16", 5.0),
)
MODELS: dict[str, tuple[str, Callable[[], nn.Module]]] = {
    "resnet56": ("ResNet-56", resnet56),
    "resnet18": ("ResNet-18", resnet18),
    "small": ("small ResNet (2 blocks of 16)", resnet),
}


def rounding_format(device: torch.device, precision: str | None) -> str:
    """The format the products' inputs are rounded to on ``device`` with ``precision``."""
    if precision == "bf16":
        return "bfloat16"
    if device.type == "cuda" and conv_tf32():
        return "tf32"
    return "float32"


def oracle_tolerance(model: nn.Module, device: torch.device, precision: str | None) -> float:
    """Relative tolerance of a loss against the float32 per-point loop, from an error estimate.

    Probabilistic rounding error analysis (Higham and Mary 2019, "A new approach to probabilistic
    rounding error analysis"): a dot product of K terms summed in float32 is off by about
    sqrt(K) u32 of the root sum of squares of its terms, which for weights of random signs is the
    size of the result; rounding both factors to a format of unit roundoff u (TF32 convolutions,
    bfloat16 under autocast) adds about sqrt(2) u. The errors of L layers add as a random walk
    (sqrt(L)), and the loss, near ln 10 for these networks, moves by about the logits' relative
    error. K is the largest fan-in of the model's convolutions and linear layers."""
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    fan_in = max(
        m.in_features
        if isinstance(m, nn.Linear)
        else m.in_channels // m.groups * math.prod(m.kernel_size)
        for m in layers
    )
    per_layer = math.sqrt(fan_in) * UNIT_ROUNDOFF["float32"]
    rounding = rounding_format(device, precision)
    if rounding != "float32":
        per_layer += math.sqrt(2) * UNIT_ROUNDOFF[rounding]
    return SAFETY * math.sqrt(len(layers)) * per_layer


def max_rel_diff(values: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(values - reference) / np.abs(reference)))


def evaluator_facts(evaluator: LossEvaluator, n_points: int) -> dict:
    """How the evaluator cut the work: strategy, data batches, points per chunk, memory budget."""
    return {
        "strategy": type(evaluator.plane_strategy).__name__,
        "batch_size": evaluator.data.batch_size,
        "n_batches": evaluator.data.n_batches,
        "chunk_points": evaluator.chunk_points(n_points),
        "memory_budget": evaluator.memory_budget,
        "precision": evaluator.precision,
    }


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return time.perf_counter() - start, result


def spread(n: int, k: int) -> np.ndarray:
    """``k`` indices spread evenly over ``range(n)``."""
    return np.linspace(0, n - 1, min(k, n)).round().astype(int)


# -- a: the grid against the per-point loop -------------------------------------------------


def grid_throughput(ctx: Context, budget: Budget) -> dict:
    """Ours against the per-point loop, interleaved (``bench_grid.bench_job``, one repeat per
    call, as many repeats as the plan and the budget allow): medians, the share of the peak
    measured in this run, each figure beside its target."""
    plan, jobs, rows = ctx.plan, {}, []
    for i, (label, case, precision, target) in enumerate(GRID_CASES):
        share = Budget(budget.left() / (len(GRID_CASES) - i))
        if share.seconds <= 0:
            rows.append({"case": label, "cut": "not started: the section's budget was spent"})
            continue
        if case not in jobs:
            jobs[case] = (
                lenet_job(plan.lenet_examples, plan.lenet_resolution, plan.lenet_loop_points)
                if case == "lenet"
                else resnet_job(
                    plan.resnet18_examples, plan.resnet18_resolution, plan.resnet18_loop_points
                )
            )
        rows.append(grid_case(jobs[case], label, precision, target, ctx, share))
    return {"cases": rows, "summary": [grid_line(r) for r in rows]}


def grid_case(
    job: Job, label: str, precision: str | None, target: float, ctx: Context, budget: Budget
) -> dict:
    device = ctx.device
    peak_name = "bfloat16_tflops" if precision else "float32_tflops"
    warm = warm_up(job, device, precision)
    fixed = warm["build_s"] + warm["loop_s_per_point"] * job.loop_points
    planned = job.resolution
    resolution = fit_resolution(planned, warm["s_per_point"], fixed, budget.left())
    job = replace(job, resolution=resolution)
    args = argparse.Namespace(quick=False, repeats=1, precision=precision, loop_batch=None)
    repeats: list[dict] = []
    while len(repeats) < ctx.plan.repeats:
        if repeats and not budget.fits(repeats[-1]["seconds"]):
            break
        start = time.perf_counter()
        result = bench_job(job, args, device, ctx.peaks[peak_name])
        repeats.append({**result, "seconds": time.perf_counter() - start})
    row = combine_repeats(repeats, ctx.peaks[peak_name])
    tol = oracle_tolerance(job.model, device, precision)
    row.update(
        case=label,
        peak=peak_name,
        target_speedup=target,
        meets_target=row["speedup"] >= target,
        tolerance=tol,
        within_tolerance=row["max_rel_diff"] <= tol,
        resolution=job.resolution,
        resolution_planned=planned,
        repeats_planned=ctx.plan.repeats,
        warm_up=warm,
    )
    if "tf32_tflops" in ctx.peaks and rounding_format(device, precision) == "tf32":
        row["share_of_tf32_peak"] = row["ours_tflops"] / ctx.peaks["tf32_tflops"]
    if job.resolution < planned or len(repeats) < ctx.plan.repeats:
        row["cut"] = "fewer points or repeats than planned, to stay inside the budget"
    return row


def warm_up(job: Job, device: torch.device, precision: str | None) -> dict[str, float]:
    """Each side run once on all the data, before the timed repeats; and what a repeat will
    cost: building ours, ours per point (a second call on 2 points), the loop per point."""
    origin, directions = job.plane.origin, job.plane.directions
    coords = grid_coords(job.plane, 2)[:2]
    build_s, evaluator = timed(
        lambda: LossEvaluator(job.model, (job.X, job.y), device=device, precision=precision), device
    )
    evaluator.plane_losses(origin, directions, coords)
    seconds, _ = timed(lambda: evaluator.plane_losses(origin, directions, coords), device)
    loop_s, _ = timed(lambda: reference_loop(job, coords[:1], device, None), device)
    return {"build_s": build_s, "s_per_point": seconds / 2, "loop_s_per_point": loop_s}


def fit_resolution(planned: int, per_point: float, fixed_s: float, seconds: float) -> int:
    """The largest resolution <= ``planned`` (and >= 2) whose one repeat, ``fixed_s`` plus R^2
    points at ``per_point`` seconds each, fits in ``seconds``."""
    fit = math.isqrt(max(int((seconds - fixed_s) / max(per_point, 1e-9)), 0))
    return max(2, min(planned, fit))


def combine_repeats(repeats: list[dict], peak: float) -> dict:
    """One row from ``bench_job`` rows of one repeat each: medians over the repeats."""
    row = dict(repeats[-1])
    for key in ("ours_s", "ours_points_per_s", "ours_tflops", "loop_points_per_s", "loop_tflops"):
        row[key] = statistics.median(r[key] for r in repeats)
    row["speedup"] = row["ours_points_per_s"] / row["loop_points_per_s"]
    row["speedups_by_repeat"] = [r["speedup"] for r in repeats]
    row["share_of_peak"] = row["ours_tflops"] / peak
    row["max_rel_diff"] = max(r["max_rel_diff"] for r in repeats)
    row["repeats"] = len(repeats)
    del row["seconds"]
    return row


def grid_line(r: dict) -> str:
    if "speedup" not in r:
        return f"{r['case']}: {r.get('cut', '')}"
    verdict = "pass" if r["meets_target"] else "FAIL"
    return (
        f"{r['case']} ({r['examples']} ex, {r['resolution']}^2 pts): {r['speedup']:.2f}x the loop "
        f"(target >= {r['target_speedup']:g}x: {verdict}), ours {r['ours_points_per_s']:.3g} "
        f"pt/s, {100 * r['share_of_peak']:.1f}% of the {r['peak']} peak, max rel diff "
        f"{r['max_rel_diff']:.1e} (tol {r['tolerance']:.1e})"
    )


# -- c: the reference surface ---------------------------------------------------------------


def reference_surface(ctx: Context, budget: Budget) -> dict:
    """ResNet-56 on a 51 x 51 plane grid: a share of the points (``surface_points``, spread by a
    seeded permutation), timed in calls of ``surface_call_points`` until done or out of budget,
    in each of :func:`surface_variants`; the whole surface's time estimated from the points/s,
    against the anchor and the goal."""
    plan = ctx.plan
    job = resnet_job(
        plan.surface_examples, plan.surface_resolution, plan.oracle_points, resnet56, "ResNet-56"
    )
    coords = grid_coords(job.plane, job.resolution)
    order = np.random.default_rng(0).permutation(len(coords))[: plan.surface_points]
    checked = coords[order[: plan.oracle_points]]
    loop_s, reference = timed(
        lambda: reference_loop(job, checked, ctx.device, min(len(job.X), 10_000)), ctx.device
    )
    anchor_pps = ANCHOR["points"] / ANCHOR["seconds"]
    out: dict[str, Any] = {
        "model": "ResNet-56 (He et al. 2016, option A shortcuts)",
        "params": sum(p.numel() for p in job.model.parameters()),
        "examples": len(job.X),
        "grid": [job.resolution, job.resolution],
        "anchor": {**ANCHOR, "points_per_s": anchor_pps},
        "goal": {"seconds": GOAL_SECONDS, "points_per_s": ANCHOR["points"] / GOAL_SECONDS},
        "loop_s_per_point": loop_s / len(checked),
        "summary": [],
    }
    for i, (name, options) in enumerate(surface_variants(ctx.device)):
        share = Budget(budget.left() / (3 - i))
        row = time_surface(job, coords[order], reference, options, ctx, share)
        row["vs_anchor"] = row["points_per_s"] / anchor_pps
        row["meets_goal"] = row["surface_s_estimated"] <= GOAL_SECONDS
        out[name] = row
        out["summary"].append(
            f"ResNet-56 {name}: {row['points_per_s']:.3g} pt/s ({row['points_timed']} of "
            f"{len(coords)} points timed), 51 x 51 in {row['surface_s_estimated']:.0f} s "
            f"(extrapolated), {row['vs_anchor']:.1f}x the anchor's 4 GPUs, goal 300 s: "
            f"{'pass' if row['meets_goal'] else 'FAIL'}; max rel diff {row['max_rel_diff']:.1e} "
            f"(tol {row['tolerance']:.1e})"
        )
    return out


def surface_variants(device: torch.device) -> list[tuple[str, dict[str, Any]]]:
    """float32 and bf16 with the defaults, and bf16 with a larger memory budget (GPUs:
    ``SURFACE_MEMORY_BUDGET``; elsewhere 4x the default): larger data batches per launch."""
    large = (
        SURFACE_MEMORY_BUDGET
        if device.type == "cuda"
        else 4 * budget_for(DEFAULT_MEMORY_BUDGET, device)
    )
    return [
        ("float32", {}),
        ("bf16", {"precision": "bf16"}),
        (f"bf16, memory_budget {large >> 20} MiB", {"precision": "bf16", "memory_budget": large}),
    ]


def time_surface(
    job: Job,
    coords: np.ndarray,
    reference: np.ndarray,
    options: dict[str, Any],
    ctx: Context,
    budget: Budget,
) -> dict:
    """Build the evaluator, evaluate the first ``len(reference)`` points (a first call, not
    counted; checked against the loop's ``reference``), then time calls over ``coords``."""
    device, plan = ctx.device, ctx.plan
    origin, directions = job.plane.origin, job.plane.directions
    build_s, evaluator = timed(
        lambda: LossEvaluator(job.model, (job.X, job.y), device=device, **options), device
    )
    checked = coords[: len(reference)]
    warm_s, ours = timed(lambda: evaluator.plane_losses(origin, directions, checked), device)
    done, seconds, last = 0, 0.0, warm_s / len(checked)
    while done < len(coords):
        # as many points as the budget has room for at the last rate (at least one)
        room = max(1, int(budget.left() / last)) if done == 0 else plan.surface_call_points
        chunk = coords[done : done + min(plan.surface_call_points, room)]
        if done and not budget.fits(last * len(chunk)):
            break
        dt, _ = timed(functools.partial(evaluator.plane_losses, origin, directions, chunk), device)
        done, seconds, last = done + len(chunk), seconds + dt, dt / len(chunk)
    pps = done / seconds
    tol = oracle_tolerance(job.model, device, options.get("precision"))
    row: dict[str, Any] = {
        "precision": evaluator.precision,
        "evaluator": evaluator_facts(evaluator, plan.surface_call_points),
        "build_s": build_s,
        "first_call_s": warm_s,
        "points_timed": done,
        "points_planned": len(coords),
        "timed_s": seconds,
        "points_per_s": pps,
        "surface_s_estimated": build_s + ANCHOR["points"] / pps,
        "estimated": f"building the evaluator, then {ANCHOR['points']} points at the rate of "
        f"the {done} timed (after a first call on {len(checked)}, not counted)",
        "max_rel_diff": max_rel_diff(ours, reference),
        "tolerance": tol,
    }
    row["within_tolerance"] = row["max_rel_diff"] <= tol
    if done < len(coords):
        row["cut"] = f"{done} of {len(coords)} planned points timed: the budget was spent"
    return row
