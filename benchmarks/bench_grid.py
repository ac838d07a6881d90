"""Loss-grid benchmark: ``compute_loss_grid`` against a per-point loop, with the device's peak.

The reference loop is what a straightforward implementation does: for each grid point, write the
flat weights into the model (``vector_to_parameters``) and run the evaluation set forward without
gradients, in float32 (in data batches of ``--loop-batch`` examples; default all at once). Both
run in the same process on the same device and points, interleaved repeat by repeat; the script
prints medians of the repeats, points/s, TFLOP/s of the network's convolutions and linear layers,
the share of the float32 matmul peak measured in the same run, the ratio, and the largest relative
difference from the loop on the points the loop evaluated (with ``--precision``, the reduced
precision's error against float32).

Cases (``--case``, repeatable; default: the first two):
  mlp        spirals MLP (1 hidden layer of 50), 100 x 100 grid
  lenet      LeNet-5 on 3,000 MNIST-shaped inputs, 10 x 10
  lenet60k   LeNet-5 on 60,000 MNIST-shaped inputs, 30 x 30 (GPU-sized)
  resnet18   ResNet-18 (BatchNorm) on CIFAR-shaped inputs: 10,000 and 10 x 10 on a GPU, 256 and
             4 x 4 on the CPU

    python benchmarks/bench_grid.py                       # mlp and lenet on the CPU
    python benchmarks/bench_grid.py --quick               # fewer points and repeats
    python benchmarks/bench_grid.py --device cuda --case lenet60k --case resnet18 --precision bf16
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from loss_landscape_anim import MLP, LeNet, SpiralsDataModule, compute_loss_grid, project, train
from loss_landscape_anim.analysis import grid_axes
from loss_landscape_anim.results import Plane
from resnets import resnet18

CASES = ("mlp", "lenet", "lenet60k", "resnet18")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(
    fn: Callable[[], object], repeats: int, device: torch.device
) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        result = fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def matmul_peak(
    device: torch.device, n: int = 4096, repeats: int = 5, dtype: torch.dtype = torch.float32
) -> float:
    """GEMM throughput in TFLOP/s, float32 by default (CPU: torch's current thread count)."""
    n = n if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)
    seconds, _ = median_time(lambda: torch.mm(a, b, out=out), repeats, device)
    return 2 * n**3 / seconds / 1e12


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


@dataclass
class Job:
    name: str
    model: nn.Module  # eval mode, CPU
    X: torch.Tensor
    y: torch.Tensor
    plane: Plane
    resolution: int
    loop_points: int


def reference_loop(
    job: Job, coords: np.ndarray, device: torch.device, batch: int | None
) -> np.ndarray:
    batch = batch or len(job.X)
    work = copy.deepcopy(job.model).to(device).eval()
    X, y = job.X.to(device), job.y.to(device)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    out = np.empty(len(coords))
    with torch.no_grad():
        for k, (a, b) in enumerate(coords):
            w = torch.as_tensor(job.plane.point(a, b), dtype=torch.float32, device=device)
            torch.nn.utils.vector_to_parameters(w, work.parameters())
            total = sum(
                loss_fn(work(X[i : i + batch]), y[i : i + batch]) for i in range(0, len(X), batch)
            )
            out[k] = float(total) / len(X)
    return out


def bench_job(job: Job, args: argparse.Namespace, device: torch.device, peak: float) -> dict:
    xs, ys = grid_axes([job.plane.path_2d], job.resolution, 0.3)
    XX, YY = np.meshgrid(xs, ys)
    coords = np.stack([XX.ravel(), YY.ravel()], 1)
    repeats = 1 if args.quick else args.repeats

    def ours():
        return compute_loss_grid(
            job.model,
            (job.X, job.y),
            job.plane,
            resolution=job.resolution,
            device=device,
            num_threads="auto",
            progress=False,
            precision=args.precision,
        )

    subset = np.linspace(0, len(coords) - 1, min(job.loop_points, len(coords))).astype(int)

    def loop() -> np.ndarray:
        return reference_loop(job, coords[subset], device, args.loop_batch)

    # Interleaved (ours, loop, ours, loop, ...): on a shared machine both sides then see the
    # same spells of contention, and the ratio of the medians is steadier than either time.
    ours_times, loop_times = [], []
    for _ in range(repeats):
        seconds, grid = median_time(ours, 1, device)
        ours_times.append(seconds)
        seconds, ref = median_time(loop, 1, device)
        loop_times.append(seconds)
    ours_s, loop_s = statistics.median(ours_times), statistics.median(loop_times)
    flops = forward_flops(job.model, job.X[:1]) * len(job.X)
    ours_pps, loop_pps = len(coords) / ours_s, len(subset) / loop_s
    values = grid.loss.ravel()[subset]
    return {
        "case": job.name,
        "device": str(device),
        "precision": grid.precision,
        "points": len(coords),
        "examples": int(job.X.shape[0]),
        "params": sum(p.numel() for p in job.model.parameters()),
        "ours_s": ours_s,
        "ours_points_per_s": ours_pps,
        "ours_tflops": ours_pps * flops / 1e12,
        "loop_points_timed": len(subset),
        "loop_points_per_s": loop_pps,
        "loop_tflops": loop_pps * flops / 1e12,
        "speedup": ours_pps / loop_pps,
        "peak_tflops": peak,
        "share_of_peak": ours_pps * flops / 1e12 / peak,
        "max_rel_diff": float(np.max(np.abs(values - ref) / np.abs(ref))),
    }


def mlp_job(quick: bool) -> Job:
    data = SpiralsDataModule()
    X, y = data.dataset.tensors
    mlp = MLP(2, 3)
    trajectory = train(mlp, data, 300, seed=0, progress=False)
    mlp.load_state_dict(trajectory.state_dict())
    resolution = 30 if quick else 100
    return Job("spirals MLP", mlp.eval(), X, y, project(trajectory), resolution, resolution**2)


def lenet_job(n: int, resolution: int, loop_points: int) -> Job:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, 1, 32, 32, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    lenet = LeNet()
    trajectory = train(
        lenet, (images[:3000], labels[:3000]), 3, batch_size=256, seed=0, progress=False
    )
    plane = project(trajectory, "filter", seed=0)
    return Job(
        f"LeNet-5 {n // 1000}k", lenet.eval(), images, labels, plane, resolution, loop_points
    )


def resnet_job(
    n: int,
    resolution: int,
    loop_points: int,
    factory: Callable[[], nn.Module] = resnet18,
    name: str = "ResNet-18",
) -> Job:
    """ResNet-18 (or ``factory()``) with BatchNorm statistics of its data, on a random plane
    whose directions are scaled to a tenth of the weights' norm."""
    torch.manual_seed(0)
    model = factory()
    X = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        model.train()(X[:256])
    model.eval()
    origin = torch.nn.utils.parameters_to_vector(model.parameters()).detach().double().numpy()
    directions = np.random.default_rng(3).normal(size=(2, origin.size))
    directions *= np.linalg.norm(origin) / np.linalg.norm(directions, axis=1, keepdims=True) / 10
    path = np.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]])
    plane = Plane(origin, directions, path, np.zeros(3), None, "random")
    return Job(name, model, X, y, plane, resolution, loop_points)


def make_job(case: str, quick: bool, device: torch.device) -> Job:
    gpu = device.type == "cuda"
    if case == "mlp":
        return mlp_job(quick)
    if case == "lenet":
        return lenet_job(600 if quick else 3000, 5 if quick else 10, 10 if quick else 30)
    if case == "lenet60k":
        return lenet_job(60_000, 10 if quick or not gpu else 30, 10 if gpu else 3)
    n = 10_000 if gpu else 256
    return resnet_job(n // 4 if quick else n, 4 if quick or not gpu else 10, 10 if gpu else 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points and repeats")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--case", action="append", choices=CASES, help="default: mlp, lenet")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    parser.add_argument("--precision", choices=["bf16", "fp16"], default=None)
    parser.add_argument("--repeats", type=int, default=3, help="repeats, median taken")
    parser.add_argument(
        "--loop-batch", type=int, default=None, help="the loop's data batch (default: all)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = matmul_peak(device)
    results = []
    for case in args.case or ["mlp", "lenet"]:
        job = make_job(case, args.quick, device)
        results.append(bench_job(job, args, device, peak))
        if not args.json:
            print(row(results[-1]), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"device {device}, CPU threads {torch.get_num_threads()}, "
        f"float32 matmul peak {peak:.3f} TFLOP/s"
    )


def row(r: dict) -> str:
    return (
        f"{r['case']:<12} {r['precision']:<9} {r['points']:>5} pts {r['examples']:>6} ex: "
        f"ours {r['ours_points_per_s']:>9.1f} pt/s ({r['ours_tflops']:.3f} TFLOP/s, "
        f"{100 * r['share_of_peak']:.0f}% of peak), loop {r['loop_points_per_s']:>8.1f} pt/s, "
        f"{r['speedup']:.1f}x, max rel diff {r['max_rel_diff']:.1e}"
    )


if __name__ == "__main__":
    main()
