"""Curvature benchmark: ``curvature_grid`` against a per-point SciPy ``eigsh`` loop.

The reference is what a straightforward implementation does: for each grid point, a SciPy
``LinearOperator`` whose matvec is one Hessian-vector product (``torch.func.jvp`` of
``torch.func.grad`` of the mean loss over all the data, at that point's weights), and ``eigsh``
twice (``which="LA"`` for the largest eigenvalue, ``"SA"`` for the smallest; k=1, tol 1e-4, a
seeded start vector). It is timed on evenly spread points of the same 25 x 25 grid, in the same
process and with the same thread count, and its mean time per point is multiplied by the number
of grid points; its eigenvalues at those points check ours.

Also measured: the cost of one Hessian-vector product in units of one gradient (the generic
``torch.func`` one, and ours batched across points), dense Hessians against batched Lanczos by
model size (the crossover behind ``DENSE_MAX_PARAMS``), the spectral density (SLQ) of the trained
MLP against its exact spectrum, Hutch++ against Hutchinson's trace error at equal numbers of
products, and a LeNet-5 map on 256 MNIST-shaped inputs before (generic products, one point at a
time) and after (``products="conv"``), interleaved in the same run.

    python benchmarks/bench_curvature.py            # 25 x 25 spirals map, 25 reference points
    python benchmarks/bench_curvature.py --quick    # 8 x 8, 4 reference points, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn
from torch.func import functional_call, grad, jvp

from loss_landscape_anim import (
    MLP,
    LeNet,
    SpiralsDataModule,
    curvature_grid,
    hessian_density,
    hessian_trace,
    project,
    train,
)
from loss_landscape_anim.analysis import grid_axes
from loss_landscape_anim.evaluate import CurvatureEvaluator
from loss_landscape_anim.results import Plane
from loss_landscape_anim.results.density import smoothed_density


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


class Reference:
    """The straightforward per-point computation: generic HVPs and SciPy ``eigsh``."""

    def __init__(self, model: nn.Module, X: torch.Tensor, y: torch.Tensor):
        self.model = model.eval()
        self.names = [n for n, _ in model.named_parameters()]
        self.shapes = [p.shape for _, p in model.named_parameters()]
        self.X, self.y = X, y
        self.P = sum(p.numel() for p in model.parameters())

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        params, offset = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            size = int(np.prod(shape))
            params[name] = w[offset : offset + size].reshape(shape)
            offset += size
        return F.cross_entropy(functional_call(self.model, params, (self.X,)), self.y)

    def hvp(self, w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return jvp(grad(self.loss), (w,), (v,))[1]

    def extremes(self, w: np.ndarray, seed: int = 0) -> tuple[float, float, int]:
        wt = torch.as_tensor(w, dtype=torch.float32)
        count = 0

        def matvec(v: np.ndarray) -> np.ndarray:
            nonlocal count
            count += 1
            vt = torch.as_tensor(np.asarray(v).ravel(), dtype=torch.float32)
            return self.hvp(wt, vt).double().numpy()

        op = LinearOperator((self.P, self.P), matvec=matvec, dtype=np.float64)
        v0 = np.random.default_rng(seed).standard_normal(self.P)
        top = eigsh(op, k=1, which="LA", v0=v0, tol=1e-4, return_eigenvectors=False)
        bottom = eigsh(op, k=1, which="SA", v0=v0, tol=1e-4, return_eigenvectors=False)
        return float(top[0]), float(bottom[0]), count


def grid_coords(plane: Plane, resolution: int) -> np.ndarray:
    xs, ys = grid_axes([plane.path_2d], resolution, 0.3)
    XX, YY = np.meshgrid(xs, ys)
    return np.stack([XX.ravel(), YY.ravel()], 1)


def spirals_map(args: argparse.Namespace, repeats: int) -> tuple[dict, nn.Module, tuple]:
    data = SpiralsDataModule()
    X, y = data.dataset.tensors
    model = MLP(2, 3)
    trajectory = train(model, data, 300, seed=0, progress=False)
    model.load_state_dict(trajectory.state_dict())
    plane = project(trajectory)
    resolution = 8 if args.quick else 25
    ours_s, grid = median_time(
        lambda: curvature_grid(model, data, plane, resolution=resolution, progress=False),
        repeats,
    )
    coords = grid_coords(plane, resolution)
    n_ref = 4 if args.quick else 25
    subset = np.linspace(0, len(coords) - 1, n_ref).round().astype(int)
    reference = Reference(model, X, y)
    ref_times, ref_max, ref_min, ref_products = [], [], [], []
    for k in subset:
        start = time.perf_counter()
        top, bottom, count = reference.extremes(plane.point(*coords[k]))
        ref_times.append(time.perf_counter() - start)
        ref_max.append(top)
        ref_min.append(bottom)
        ref_products.append(count)
    ours_max = grid.lambda_max.ravel()[subset]
    ours_min = grid.lambda_min.ravel()[subset]
    ref_total = float(np.mean(ref_times)) * len(coords)
    functional_s = time_functional_products(model, data, plane, coords[:: 5 if args.quick else 25])
    result = {
        "points": len(coords),
        "params": reference.P,
        "examples": int(X.shape[0]),
        "method": grid.method,
        "ours_s": ours_s,
        "ours_ms_per_point": 1e3 * ours_s / len(coords),
        "ours_products_per_point": grid.n_products / len(coords),
        "ref_points_timed": n_ref,
        "ref_ms_per_point_median": 1e3 * statistics.median(ref_times),
        "ref_ms_per_point_mean": 1e3 * float(np.mean(ref_times)),
        "ref_products_per_point": float(np.mean(ref_products)),
        "ref_total_s_estimated": ref_total,
        "speedup": ref_total / ours_s,
        "lambda_max_max_rel_diff": float(np.max(np.abs(ours_max - ref_max) / np.abs(ref_max))),
        "lambda_min_max_diff_over_lambda_max": float(
            np.max(np.abs(ours_min - np.array(ref_min)) / np.abs(ref_max))
        ),
        "functional_products_ms_per_point": functional_s,
        "ratio_range": [float(np.nanmin(grid.ratio)), float(np.nanmax(grid.ratio))],
    }
    return result, model, (X, y)


def time_functional_products(model: nn.Module, data, plane: Plane, coords: np.ndarray) -> float:
    """ms per point of batched Lanczos with the generic (torch.func) products."""
    evaluator = CurvatureEvaluator(model, data, products="functional")

    def run() -> object:
        return evaluator.plane_extremes(
            plane.origin, plane.directions, coords, method="lanczos", seed=0
        )

    seconds, _ = median_time(run, 1)
    return 1e3 * seconds / len(coords)


def product_costs(model: nn.Module, X: torch.Tensor, y: torch.Tensor, repeats: int) -> dict:
    """One gradient, one generic HVP, and one of ours per point (batched), all over all data."""
    reference = Reference(model, X, y)
    w = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    v = torch.randn(reference.P, generator=torch.Generator().manual_seed(0))
    gradient = grad(reference.loss)
    gradient(w)
    reference.hvp(w, v)
    t_grad, _ = median_time(lambda: gradient(w), 20 * repeats)
    t_hvp, _ = median_time(lambda: reference.hvp(w, v), 20 * repeats)
    evaluator = CurvatureEvaluator(model, (X, y))
    K = evaluator.chunk_points(10_000)
    W = w + 0.01 * torch.randn(K, reference.P, generator=torch.Generator().manual_seed(1))
    V = torch.randn(K, 1, reference.P, dtype=torch.float64)
    evaluator.products.start(W)
    evaluator.products.products(V)
    t_ours, _ = median_time(lambda: evaluator.products.products(V), 20 * repeats)
    return {
        "grad_ms": 1e3 * t_grad,
        "hvp_generic_ms": 1e3 * t_hvp,
        "hvp_generic_in_grads": t_hvp / t_grad,
        "hvp_ours_ms_per_point": 1e3 * t_ours / K,
        "hvp_ours_in_grads": t_ours / K / t_grad,
        "ours_points_per_call": K,
        "ours_products": type(evaluator.products).__name__,
    }


def dense_vs_lanczos(quick: bool) -> list[dict]:
    data = SpiralsDataModule()
    rows = []
    for hidden in (4, 8) if quick else (4, 8, 16, 24, 32):
        model = MLP(2, 3, hidden_dim=hidden)
        evaluator = CurvatureEvaluator(model, data)
        w = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
        n = 8 if quick else 32
        W = w + 0.1 * torch.randn(n, w.numel(), generator=torch.Generator().manual_seed(0))
        points = W.numpy()
        row = {"params": evaluator.n_params}
        for method in ("dense", "lanczos"):

            def run(
                m: str = method, e: CurvatureEvaluator = evaluator, pts: np.ndarray = points
            ) -> object:
                return e.weight_extremes(pts, method=m, seed=0)

            seconds, _ = median_time(run, 1 if quick else 3)
            row[f"{method}_ms_per_point"] = 1e3 * seconds / n
        rows.append(row)
    return rows


def spectrum_and_traces(model: nn.Module, data, quick: bool) -> dict:
    """The trained spirals MLP's exact spectrum (dense Hessian, ``eigvalsh``) against
    ``hessian_density`` (time, products, L1 distance of the smoothed densities) and the errors of
    Hutchinson and Hutch++ at equal numbers of products, mean over seeds."""
    evaluator = CurvatureEvaluator(model, data)
    w = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    H = evaluator.dense_hessians(w[None])[0].numpy()
    eigenvalues = np.linalg.eigvalsh(H)
    seconds, density = median_time(lambda: hessian_density(model, data, seed=0), 1 if quick else 3)
    sigma = 0.01 * (eigenvalues[-1] - eigenvalues[0])
    grid = np.linspace(eigenvalues[0] - 8 * sigma, eigenvalues[-1] + 8 * sigma, 20001)
    exact = smoothed_density(
        eigenvalues[None], np.full((1, eigenvalues.size), 1 / eigenvalues.size), grid, sigma
    )
    l1 = float(np.trapezoid(np.abs(density.density(grid, sigma) - exact), grid))  # type: ignore[attr-defined]
    trace = float(eigenvalues.sum())
    errors: dict[str, dict[int, float]] = {"hutchinson": {}, "hutch++": {}}
    for n in (12, 30, 60) if quick else (12, 30, 60, 120, 240):
        for method in errors:
            found = [
                hessian_trace(model, data, n_samples=n, seed=seed, method=method).estimate
                for seed in range(5 if quick else 20)
            ]
            errors[method][n] = float(np.mean(np.abs(np.array(found) - trace)) / abs(trace))
    return {
        "params": int(w.numel()),
        "density_s": seconds,
        "density_products": density.n_products,  # type: ignore[attr-defined]
        "density_runs_steps": [density.n_runs, density.n_steps],  # type: ignore[attr-defined]
        "density_l1_sigma_1pct": l1,
        "density_l1_bound": float(np.sqrt(2 / density.n_runs)),  # type: ignore[attr-defined]
        "lambda_max_exact": float(eigenvalues[-1]),
        "lambda_max_slq": density.support[1],  # type: ignore[attr-defined]
        "trace_exact": trace,
        "trace_slq": [density.trace, density.trace_stderr],  # type: ignore[attr-defined]
        "trace_relative_error": errors,
    }


def lenet_setup(quick: bool) -> tuple[nn.Module, tuple, Plane]:
    """LeNet-5 trained 2 epochs on 256 (quick: 64) random MNIST-shaped inputs, and a filter-
    normalised plane through its final weights."""
    g = torch.Generator().manual_seed(0)
    n = 64 if quick else 256
    images = torch.randn(n, 1, 32, 32, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    torch.manual_seed(0)
    model = LeNet()
    trajectory = train(model, (images, labels), 2, batch_size=64, seed=0, progress=False)
    model.load_state_dict(trajectory.state_dict())
    return model, (images, labels), project(trajectory, "filter", seed=0)


def lenet_map(quick: bool, threads: int) -> dict:
    """The LeNet-5 convexity map before and after the convolutional products, same run: the
    batched Lanczos of ``curvature_grid`` (tol 1e-3, one seeded start vector) at points spread
    evenly over a 25 x 25 grid, with the generic ``torch.func`` products one point at a time
    (``products="functional"``, what ``"auto"`` chose before) and with ``"auto"`` (now the
    written-out products shared across points), interleaved repeat by repeat; extrapolated to
    625 points. Also the eigsh loop at one point, for scale."""
    model, data, plane = lenet_setup(quick)
    coords = grid_coords(plane, 25)
    n_points = 8 if quick else 32
    subset = coords[np.linspace(0, len(coords) - 1, n_points).round().astype(int)]
    times: dict[str, list[float]] = {"functional": [], "auto": []}
    found: dict[str, object] = {}
    for repeat in range(1 if quick else 3):
        order = ["functional", "auto"] if repeat % 2 == 0 else ["auto", "functional"]
        for products in order:
            start = time.perf_counter()
            evaluator = CurvatureEvaluator(model, data, products=products, num_threads=threads)
            found[products] = evaluator.plane_extremes(
                plane.origin, plane.directions, subset, method="lanczos", tol=1e-3, seed=0
            )
            times[products].append(time.perf_counter() - start)
    before, after = found["functional"], found["auto"]
    per_point = {name: statistics.median(t) / n_points for name, t in times.items()}
    reference = Reference(model, *data)
    start = time.perf_counter()
    reference.extremes(plane.origin)
    ref_point = time.perf_counter() - start
    return {
        "params": reference.P,
        "examples": int(data[0].shape[0]),
        "points_timed": n_points,
        "products_after": type(CurvatureEvaluator(model, data).products).__name__,
        "products_per_point_before": before.n_products / n_points,  # type: ignore[attr-defined]
        "products_per_point_after": after.n_products / n_points,  # type: ignore[attr-defined]
        "before_s_per_point": per_point["functional"],
        "after_s_per_point": per_point["auto"],
        "before_25x25_s_estimated": per_point["functional"] * 625,
        "after_25x25_s_estimated": per_point["auto"] * 625,
        "speedup": per_point["functional"] / per_point["auto"],
        "speedups_by_repeat": [
            b / a for b, a in zip(times["functional"], times["auto"], strict=True)
        ],
        "lambda_max_max_rel_diff": float(
            np.max(np.abs(after.largest - before.largest) / np.abs(before.largest))  # type: ignore[attr-defined]
        ),
        "lambda_min_max_diff_over_lambda_max": float(
            np.max(np.abs(after.smallest - before.smallest) / np.abs(before.largest))  # type: ignore[attr-defined]
        ),
        "ref_s_per_point": ref_point,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller job, one repeat")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else 3
    load_start = os.getloadavg()
    spirals, model, (X, y) = spirals_map(args, repeats)
    results = {
        "threads": torch.get_num_threads(),
        "load_average_start": load_start,
        "spirals": spirals,
        "products": product_costs(model, X, y, repeats),
        "dense_vs_lanczos": dense_vs_lanczos(args.quick),
        "spectrum": spectrum_and_traces(model, SpiralsDataModule(), args.quick),
        "lenet": lenet_map(args.quick, args.threads),
        "load_average_end": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    report(results)


def report(r: dict) -> None:
    s, p, le = r["spirals"], r["products"], r["lenet"]
    print(f"threads {r['threads']}, load average start {r['load_average_start'][0]:.2f}")
    print(
        f"spirals MLP ({s['params']} params, {s['examples']} examples), {s['points']} points, "
        f"method {s['method']}"
    )
    print(
        f"  ours {s['ours_s']:.2f} s ({s['ours_ms_per_point']:.1f} ms/point, "
        f"{s['ours_products_per_point']:.1f} products/point)"
    )
    print(
        f"  eigsh loop {s['ref_ms_per_point_mean']:.0f} ms/point (median "
        f"{s['ref_ms_per_point_median']:.0f}, {s['ref_products_per_point']:.0f} products/point, "
        f"{s['ref_points_timed']} points) -> {s['ref_total_s_estimated']:.0f} s for the map"
    )
    print(f"  speedup {s['speedup']:.1f}x")
    print(
        f"  lambda_max max rel diff {s['lambda_max_max_rel_diff']:.1e}, lambda_min max diff / "
        f"lambda_max {s['lambda_min_max_diff_over_lambda_max']:.1e}"
    )
    print(
        f"  batched Lanczos with generic torch.func products: "
        f"{s['functional_products_ms_per_point']:.0f} ms/point"
    )
    print(
        f"one gradient {p['grad_ms']:.2f} ms; one HVP: generic {p['hvp_generic_ms']:.2f} ms "
        f"({p['hvp_generic_in_grads']:.1f} gradients), ours {p['hvp_ours_ms_per_point']:.3f} ms "
        f"per point ({p['hvp_ours_in_grads']:.2f} gradients; {p['ours_points_per_call']} points "
        f"per call, {p['ours_products']})"
    )
    print("dense vs lanczos, ms per point:")
    for row in r["dense_vs_lanczos"]:
        print(
            f"  P={row['params']:>4}: dense {row['dense_ms_per_point']:.1f}, "
            f"lanczos {row['lanczos_ms_per_point']:.1f}"
        )
    print(
        f"LeNet-5 ({le['params']} params, {le['examples']} examples), {le['points_timed']} points "
        f"of a 25 x 25 map: before (generic products, one point at a time) "
        f"{le['before_s_per_point']:.2f} s/point ({le['products_per_point_before']:.0f} "
        f"products), after ({le['products_after']}) {le['after_s_per_point']:.2f} s/point "
        f"({le['products_per_point_after']:.0f} products): {le['speedup']:.2f}x (by repeat "
        + ", ".join(f"{x:.2f}" for x in le["speedups_by_repeat"])
        + f"); 25 x 25: {le['before_25x25_s_estimated'] / 60:.1f} -> "
        f"{le['after_25x25_s_estimated'] / 60:.1f} min; lambda_max rel diff "
        f"{le['lambda_max_max_rel_diff']:.1e}, lambda_min diff / lambda_max "
        f"{le['lambda_min_max_diff_over_lambda_max']:.1e}; eigsh loop {le['ref_s_per_point']:.2f} s/point"
    )
    sp = r["spectrum"]
    print(
        f"spectral density of the spirals MLP ({sp['params']} params): {sp['density_s']:.2f} s, "
        f"{sp['density_products']} products ({sp['density_runs_steps'][0]} runs x "
        f"{sp['density_runs_steps'][1]} steps); L1 to the exact smoothed spectrum (sigma 1%) "
        f"{sp['density_l1_sigma_1pct']:.3f} (bound {sp['density_l1_bound']:.3f}); lambda_max "
        f"{sp['lambda_max_slq']:.5f} (exact {sp['lambda_max_exact']:.5f}); trace "
        f"{sp['trace_slq'][0]:.3f} +- {sp['trace_slq'][1]:.3f} (exact {sp['trace_exact']:.3f})"
    )
    print("trace, mean relative error over seeds, by products:")
    for method, by_n in sp["trace_relative_error"].items():
        print(f"  {method:10s} " + "  ".join(f"{n}: {e:.3f}" for n, e in by_n.items()))
    print(f"load average end {r['load_average_end'][0]:.2f}")


if __name__ == "__main__":
    main()
