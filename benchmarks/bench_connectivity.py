"""Mode connectivity of LeNet-5: two solutions from two seeds, the barrier on the straight line, after
aligning their units, and on a trained Bezier curve, with the time each step takes.

Data: the MNIST training set when ``--data-dir`` holds its IDX files; otherwise MNIST-shaped
synthetic digits made here (1 x 32 x 32, 10 classes: a fixed smooth random template per class,
shifted by up to 2 pixels, plus noise), which LeNet-5 learns in a few epochs, so the two solutions
are real minima rather than memorised noise.

Steps timed (seconds, medians of ``--repeats``): training the two networks, the loss on the line
(``loss_along_line``, 25 points), ``align`` by weight matching, by activation matching and the best
of them by the midpoint's loss, ``connect`` (a Bezier curve, one bend), the loss along the curve
(25 points), the loss grid on the plane through the ends and the bend (20 x 20), the loss along the
curve of 6 frames (13 points each), the animation (GIF). Training uses 3,000 examples; every loss
and the activation matching use the first 1,000.

    python benchmarks/bench_connectivity.py            # 3,000 examples, 3 repeats
    python benchmarks/bench_connectivity.py --quick    # 512 examples, fewer epochs, one repeat
    python benchmarks/bench_connectivity.py --data-dir ~/data/mnist   # real MNIST
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from loss_landscape_anim import (
    LeNet,
    LossEvaluator,
    MNISTDataModule,
    align,
    animate_connectivity,
    compute_loss_grid,
    connect,
    loss_along_curve,
    loss_along_line,
    train,
)

#: Points of t (or alpha) on the line and the final curve.
POINTS = 25
#: Frames of the animation that get the loss along their curve, and its points of t there.
FRAME_LOSSES = 6
FRAME_POINTS = 13


def synthetic_digits(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` MNIST-shaped images (n, 1, 32, 32) of 10 classes and their labels."""
    g = torch.Generator().manual_seed(seed)
    kernel = torch.exp(-(torch.arange(-4, 5, dtype=torch.float32) ** 2) / 8)
    kernel = (kernel[:, None] * kernel[None, :])[None, None] / kernel.sum() ** 2
    templates = F.conv2d(torch.randn(10, 1, 40, 40, generator=g), kernel)[..., :32, :32]
    templates = (templates - templates.mean()) / templates.std()
    labels = torch.randint(0, 10, (n,), generator=g)
    shifts = torch.randint(-2, 3, (n, 2), generator=g)
    images = torch.stack(
        [
            torch.roll(templates[c], (int(s[0]), int(s[1])), dims=(1, 2))
            for c, s in zip(labels, shifts, strict=True)
        ]
    )
    return images + 0.8 * torch.randn(images.shape, generator=g), labels


def load_data(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, str]:
    if args.data_dir:
        module = MNISTDataModule(n_examples=args.examples, data_dir=args.data_dir, download=False)
        X, y = module.dataset.tensors
        return X, y, "MNIST"
    X, y = synthetic_digits(args.examples)
    return X, y, "synthetic MNIST-shaped digits"


def timed(results: dict, name: str, fn):
    start = time.perf_counter()
    value = fn()
    results.setdefault(name, []).append(time.perf_counter() - start)
    return value


def one_run(X: torch.Tensor, y: torch.Tensor, args: argparse.Namespace, out: Path) -> dict:
    times: dict[str, list[float]] = {}
    data = (X, y)
    held = (X[: args.evaluate], y[: args.evaluate])  # every loss is evaluated on these

    def lenet(seed: int) -> LeNet:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return LeNet(learning_rate=1e-3)

    def fit(seed: int) -> np.ndarray:
        trajectory = train(lenet(seed), data, args.epochs, batch_size=64, seed=seed, progress=False)
        return trajectory.final_params

    a, b = timed(times, "train both", lambda: [fit(1), fit(2)])
    model = lenet(1)
    line = timed(times, "line", lambda: loss_along_line(model, held, a, b, n_points=POINTS))
    weight = timed(times, "align weight", lambda: align(model, a, b))
    activation = timed(times, "align activation", lambda: align(model, a, b, data=held))
    best = timed(times, "align best", lambda: align(model, a, b, data=held, method="best"))
    aligned = {
        name: loss_along_line(model, held, a, w, n_points=POINTS).barrier
        for name, w in (("weight", weight), ("activation", activation), ("best", best))
    }
    curve = timed(
        times,
        "connect",
        lambda: connect(
            model, data, a, b, epochs=args.curve_epochs, lr=args.lr, batch_size=64, progress=False
        ),
    )
    along = timed(
        times, "curve losses", lambda: loss_along_curve(model, held, curve, n_points=POINTS)
    )
    plane = curve.plane()
    paths = curve.history_paths(plane)
    grid = timed(
        times,
        "grid",
        lambda: compute_loss_grid(
            model, held, plane, resolution=args.resolution, extra_paths=paths, progress=False
        ),
    )
    evaluator = LossEvaluator(model, held)
    rows = np.unique(np.linspace(0, curve.n_rows - 1, FRAME_LOSSES).round().astype(int))
    losses = timed(
        times,
        f"{len(rows)} frames' losses",
        lambda: {
            int(r): loss_along_curve(
                model,
                held,
                curve,
                n_points=FRAME_POINTS,
                row=int(r),
                evaluator=evaluator,
                accuracy=False,
            )
            for r in rows
        },
    )
    timed(
        times,
        "animation",
        lambda: animate_connectivity(
            curve, grid, out, line=line, curve_losses=losses, progress=False
        ),
    )
    return {
        "times": times,
        "params": curve.n_params,
        "end_losses": [line.start_loss, line.end_loss],
        "end_accuracies": [float(line.accuracy[0]), float(line.accuracy[-1])],
        "line_barrier": line.barrier,
        "aligned_barrier": aligned,
        "curve_barrier": along.barrier,
        "curve_max_loss": float(along.loss.max()),
        "curve_steps": int(curve.train_loss.shape[0]),
        "frames": curve.n_rows,
        "grid_points": args.resolution**2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller job, one repeat")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST IDX files")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args()
    args.examples = 512 if args.quick else 3000
    args.evaluate = 256 if args.quick else 1000
    args.epochs = 2 if args.quick else 5
    args.curve_epochs = 2 if args.quick else 10
    args.resolution = 6 if args.quick else 20
    args.lr = 1e-3
    repeats = args.repeats or (1 if args.quick else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    X, y, source = load_data(args)
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            runs.append(one_run(X, y, args, Path(folder) / "connectivity.gif"))
    times = {k: statistics.median(r["times"][k][0] for r in runs) for k in runs[0]["times"]}
    result = {
        "data": source,
        "examples": int(X.shape[0]),
        "threads": torch.get_num_threads(),
        "cpu": torch.backends.cpu.get_cpu_capability(),
        "repeats": repeats,
        "load_average_start": load_start,
        "median_s": times,
        "total_s": sum(times.values()),
        **{k: v for k, v in runs[0].items() if k != "times"},
        "load_average_end": os.getloadavg(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    report(result)


def report(r: dict) -> None:
    print(
        f"LeNet-5 ({r['params']} parameters) on {r['examples']} {r['data']}, {r['threads']} "
        f"threads ({r['cpu']}), medians of {r['repeats']}, load average "
        f"{r['load_average_start'][0]:.2f} -> {r['load_average_end'][0]:.2f}"
    )
    print(
        f"  end losses {r['end_losses'][0]:.4f}, {r['end_losses'][1]:.4f}; accuracies "
        f"{r['end_accuracies'][0]:.3f}, {r['end_accuracies'][1]:.3f}"
    )
    aligned = ", ".join(f"{k} {v:.4f}" for k, v in r["aligned_barrier"].items())
    print(
        f"  barrier: line {r['line_barrier']:.4f}; aligned: {aligned}; curve {r['curve_barrier']:.4f}"
    )
    print(f"  curve: {r['curve_steps']} steps, largest loss along it {r['curve_max_loss']:.4f}")
    for name, seconds in r["median_s"].items():
        print(f"  {name:<18} {seconds:7.2f} s")
    print(f"  {'total':<18} {r['total_s']:7.2f} s")


if __name__ == "__main__":
    main()
