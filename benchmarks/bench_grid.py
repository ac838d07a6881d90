"""Loss-grid benchmark: ``compute_loss_grid`` against a per-point loop, with the matmul peak.

The reference loop is what a straightforward implementation does: for each grid point, write the
flat weights into the model (``vector_to_parameters``) and run the whole evaluation set forward
without gradients. Both are run in the same process on the same points; the script prints medians
of the repeats, points/s, GFLOP/s and the ratio, and checks the values agree.

    python benchmarks/bench_grid.py            # spirals MLP 100 x 100, LeNet-5 on 3,000 inputs
    python benchmarks/bench_grid.py --quick    # fewer points and repeats
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from loss_landscape_anim import MLP, LeNet, SpiralsDataModule, compute_loss_grid, project, train
from loss_landscape_anim.analysis import grid_axes
from loss_landscape_anim.results import Plane


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """float32 GEMM throughput in GFLOP/s with torch's current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)
    seconds, _ = median_time(lambda: torch.mm(a, b, out=out), repeats)
    return 2 * n**3 / seconds / 1e9


def forward_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-add FLOPs (2 per MAC) of the Linear and Conv layers for one forward of ``x``."""
    total = 0

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += 2 * output.numel() * module.in_features
        elif isinstance(module, nn.Conv2d):
            k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total += 2 * output.numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def reference_loop(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, plane: Plane, coords: np.ndarray
) -> np.ndarray:
    work = copy.deepcopy(model).eval()
    loss_fn = nn.CrossEntropyLoss()
    out = np.empty(len(coords))
    with torch.no_grad():
        for k, (a, b) in enumerate(coords):
            w = torch.as_tensor(plane.point(a, b), dtype=torch.float32)
            torch.nn.utils.vector_to_parameters(w, work.parameters())
            out[k] = loss_fn(work(X), y).item()
    return out


def bench_case(
    name: str,
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    plane: Plane,
    resolution: int,
    loop_points: int,
    repeats: int,
    peak: float,
) -> dict:
    xs, ys = grid_axes([plane.path_2d], resolution, 0.3)
    XX, YY = np.meshgrid(xs, ys)
    coords = np.stack([XX.ravel(), YY.ravel()], 1)
    ours_s, grid = median_time(
        lambda: compute_loss_grid(
            model, (X, y), plane, resolution=resolution, num_threads="auto", progress=False
        ),
        repeats,
    )
    subset = np.linspace(0, len(coords) - 1, min(loop_points, len(coords))).astype(int)
    loop_s, ref = median_time(lambda: reference_loop(model, X, y, plane, coords[subset]), repeats)
    ours_values = grid.loss.ravel()[subset]
    flops = forward_flops(model, X)
    ours_pps = len(coords) / ours_s
    loop_pps = len(subset) / loop_s
    return {
        "case": name,
        "points": len(coords),
        "examples": int(X.shape[0]),
        "params": sum(p.numel() for p in model.parameters()),
        "ours_s": ours_s,
        "ours_points_per_s": ours_pps,
        "ours_gflops": ours_pps * flops / 1e9,
        "loop_points_timed": len(subset),
        "loop_points_per_s": loop_pps,
        "loop_gflops": loop_pps * flops / 1e9,
        "speedup": ours_pps / loop_pps,
        "peak_gflops": peak,
        "max_rel_diff": float(np.max(np.abs(ours_values - ref) / np.abs(ref))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points and repeats")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    peak = matmul_peak()
    results = []

    data = SpiralsDataModule()
    mlp = MLP(2, 3)
    X, y = data.dataset.tensors
    trajectory = train(mlp, data, 300, seed=0, progress=False)
    plane = project(trajectory)
    trained = copy.deepcopy(mlp)
    trained.load_state_dict(trajectory.state_dict())
    results.append(
        bench_case(
            "spirals MLP",
            trained,
            X,
            y,
            plane,
            30 if args.quick else 100,
            900 if args.quick else 10_000,
            repeats,
            peak,
        )
    )

    g = torch.Generator().manual_seed(0)
    n = 600 if args.quick else 3000
    images = torch.randn(n, 1, 32, 32, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    lenet = LeNet()
    lenet_traj = train(lenet, (images, labels), 3, batch_size=256, seed=0, progress=False)
    lenet_plane = project(lenet_traj, "filter", seed=0)
    results.append(
        bench_case(
            "LeNet-5",
            lenet,
            images,
            labels,
            lenet_plane,
            5 if args.quick else 10,
            10 if args.quick else 30,
            repeats,
            peak,
        )
    )
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"threads {torch.get_num_threads()}, float32 matmul peak {peak:.0f} GFLOP/s")
    print(
        f"{'case':<12} {'points':>6} {'ours pt/s':>10} {'GFLOP/s':>8} {'loop pt/s':>10} "
        f"{'GFLOP/s':>8} {'speedup':>8} {'max rel diff':>12}"
    )
    for r in results:
        print(
            f"{r['case']:<12} {r['points']:>6} {r['ours_points_per_s']:>10.1f} "
            f"{r['ours_gflops']:>8.1f} {r['loop_points_per_s']:>10.1f} {r['loop_gflops']:>8.1f} "
            f"{r['speedup']:>7.1f}x {r['max_rel_diff']:>12.1e}"
        )


if __name__ == "__main__":
    main()
