"""The levers section of ``bench_gpu.py``: each change that can be made from outside the library
(channels_last, cudnn.benchmark, torch.compile, bf16, a larger memory budget, the strategy)
measured alone against the defaults on ResNet grids, and checked against the per-point loop."""

from __future__ import annotations

import contextlib
import copy
import statistics
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bench_curvature import grid_coords
from bench_grid import Job, reference_loop, resnet_job
from gpu_grids import MODELS, evaluator_facts, max_rel_diff, oracle_tolerance, spread, timed
from gpu_runner import Budget, Context, release_memory
from loss_landscape_anim.evaluate import LossEvaluator
from loss_landscape_anim.evaluate.budgets import DEFAULT_MEMORY_BUDGET, budget_for

#: A lever is kept when it is at least this much faster than the defaults (and within tolerance).
KEEP_MIN_SPEEDUP = 1.05
#: Seconds set aside for torch.compile's first call when deciding whether a lever fits the
#: budget (ResNet-56 under vmap took about 35 s to compile on a 2-core CPU).
COMPILE_ESTIMATE_S = 40.0


@dataclass(frozen=True)
class Lever:
    """One change applied from outside the library: to the model, the inputs, the evaluator's
    options or torch's settings."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    channels_last: bool = False
    cudnn_benchmark: bool = False
    compiled: bool = False
    note: str = ""


CHANNELS_LAST_NOTE = (
    "the model's copy and the inputs channels_last; the evaluator unflattens each point's "
    "weights in the default layout, so channels_last weights would need a src change"
)


def lever_list(device: torch.device) -> list[Lever]:
    budget = budget_for(DEFAULT_MEMORY_BUDGET, device)
    return [
        Lever("channels_last", channels_last=True, note=CHANNELS_LAST_NOTE),
        Lever("cudnn.benchmark", cudnn_benchmark=True),
        Lever("bf16", {"precision": "bf16"}),
        Lever("bf16 + channels_last", {"precision": "bf16"}, channels_last=True),
        Lever(f"memory_budget x16 ({16 * budget >> 20} MiB)", {"memory_budget": 16 * budget}),
        Lever("strategy='vmap' (first layer not hoisted)", {"strategy": "vmap"}),
        Lever("torch.compile", compiled=True, note="torch.compile(model) passed as the model"),
        Lever("bf16 + torch.compile", {"precision": "bf16"}, compiled=True),
    ]


#: Levers not measured: what each would need.
NOT_MEASURED = {
    "CUDA graphs": "needs src change: the evaluator allocates each chunk's tensors afresh and "
    "loops over chunks in Python; capturing a chunk needs static input and output buffers",
    "channels_last weights": "needs src change (see the channels_last lever's note)",
}


def levers(ctx: Context, budget: Budget) -> dict:
    """Each lever against the defaults on the same points, interleaved repeat by repeat, on
    each model of the plan; each lever's losses against the per-point loop."""
    out: dict[str, Any] = {"not_measured": NOT_MEASURED, "summary": []}
    models = ctx.plan.lever_models
    for i, key in enumerate(models):
        share = Budget(budget.left() / (len(models) - i))
        out[key] = lever_table(key, ctx, share)
        for row in out[key]["levers"]:
            out["summary"].append(lever_line(out[key]["model"], row))
    return out


def lever_table(key: str, ctx: Context, budget: Budget) -> dict:
    device, plan = ctx.device, ctx.plan
    name, factory = MODELS[key]
    job = resnet_job(plan.lever_examples, 5, plan.oracle_points, factory, name)
    coords = grid_coords(job.plane, 5)[spread(25, plan.lever_points)]
    loop_batch = min(len(job.X), 10_000)
    loop_s, reference = timed(
        lambda: reference_loop(job, coords[: plan.oracle_points], device, loop_batch), device
    )
    base_build_s, base = timed(
        lambda: LossEvaluator(job.model, (job.X, job.y), device=device), device
    )
    origin, directions = job.plane.origin, job.plane.directions
    first_s, _ = timed(lambda: base.plane_losses(origin, directions, coords), device)
    base_s, _ = timed(lambda: base.plane_losses(origin, directions, coords), device)
    rows = []
    for lever in lever_list(device):
        estimate = (2 * plan.repeats + 2) * base_s + (COMPILE_ESTIMATE_S if lever.compiled else 0)
        if not budget.fits(estimate):
            cut = f"not run: it needs ~{estimate:.0f} s and {budget.left():.0f} s are left"
            rows.append({"lever": lever.name, "cut": cut})
            continue
        try:
            row = measure_lever(lever, job, coords, (base, base_build_s), reference, ctx)
        except Exception as exc:
            row = {
                "lever": lever.name,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-3000:],
            }
        finally:
            release_memory()
        rows.append(row)
    return {
        "model": name,
        "params": sum(p.numel() for p in job.model.parameters()),
        "examples": len(job.X),
        "points": len(coords),
        "oracle_points": plan.oracle_points,
        "defaults": evaluator_facts(base, len(coords)),
        "defaults_build_s": base_build_s,
        "defaults_first_call_s": first_s,
        "loop_s_per_point": loop_s / plan.oracle_points,
        "levers": rows,
    }


@contextlib.contextmanager
def cudnn_benchmark(on: bool) -> Iterator[None]:
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def measure_lever(
    lever: Lever,
    job: Job,
    coords: np.ndarray,
    defaults: tuple[LossEvaluator, float],
    reference: np.ndarray,
    ctx: Context,
) -> dict:
    """``lever`` against the ``defaults`` (the evaluator, and the seconds it took to build):
    medians of interleaved calls on ``coords``, the losses against the loop's ``reference`` on
    the first points; with torch.compile, the compile time: what building the evaluator and its
    first call took more than the plain evaluator's build and a steady call."""
    base, base_build_s = defaults
    device, repeats = ctx.device, ctx.plan.repeats
    model: Any = job.model
    X = job.X
    if lever.channels_last:
        model = copy.deepcopy(model).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        X = X.contiguous(memory_format=torch.channels_last)
    if lever.compiled:
        model = torch.compile(model)
    origin, directions = job.plane.origin, job.plane.directions
    graphs = dynamo_counts()
    with cudnn_benchmark(lever.cudnn_benchmark):
        build_s, evaluator = timed(
            lambda: LossEvaluator(model, (X, job.y), device=device, **lever.options), device
        )
        first_s, _ = timed(lambda: evaluator.plane_losses(origin, directions, coords), device)
    base_times, lever_times, values = [], [], np.empty(0)
    for _ in range(repeats):
        base_times.append(timed(lambda: base.plane_losses(origin, directions, coords), device)[0])
        with cudnn_benchmark(lever.cudnn_benchmark):
            dt, values = timed(lambda: evaluator.plane_losses(origin, directions, coords), device)
        lever_times.append(dt)
    ratio = statistics.median(base_times) / statistics.median(lever_times)
    diff = max_rel_diff(values[: len(reference)], reference)
    tol = oracle_tolerance(job.model, device, lever.options.get("precision"))
    row: dict[str, Any] = {
        "lever": lever.name,
        "speed_ratio": ratio,
        "defaults_s": statistics.median(base_times),
        "lever_s": statistics.median(lever_times),
        "build_s": build_s,
        "first_call_s": first_s,
        "max_rel_diff": diff,
        "tolerance": tol,
        "within_tolerance": diff <= tol,
        "kept": diff <= tol and ratio >= KEEP_MIN_SPEEDUP,
        "evaluator": evaluator_facts(evaluator, len(coords)),
        "note": lever.note,
    }
    if lever.compiled:
        after = dynamo_counts()
        row["compile_s"] = build_s - base_build_s + first_s - row["lever_s"]
        row["graphs_compiled"] = after["graphs"] - graphs["graphs"]
        row["graph_breaks"] = after["breaks"] - graphs["breaks"]
    return row


def dynamo_counts() -> dict[str, int]:
    """Graphs torch.compile has compiled, and graph breaks, in this process so far."""
    from torch._dynamo.utils import counters

    return {
        "graphs": int(counters["stats"]["unique_graphs"]),
        "breaks": int(sum(counters["graph_break"].values())),
    }


def lever_line(model: str, r: dict) -> str:
    if "speed_ratio" not in r:
        return f"{model}, {r['lever']}: {r.get('cut') or r.get('error')}"
    extra = ""
    if "compile_s" in r:
        extra = f", compile {r['compile_s']:.1f} s ({r['graphs_compiled']} graphs)"
    return (
        f"{model}, {r['lever']}: {r['speed_ratio']:.2f}x the defaults{extra}, max rel diff "
        f"{r['max_rel_diff']:.1e} (tol {r['tolerance']:.1e}): {'kept' if r['kept'] else 'not kept'}"
    )
