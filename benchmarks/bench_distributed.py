"""Loss grid of a ResNet-style CIFAR-shaped model on 1 and 2 processes (``torch.distributed``).

Each configuration runs in fresh processes that build the same model, data and plane from seeds:
one process with 1 thread, one process with 2 threads (the whole machine to one process), and two
processes of 1 thread each in a gloo process group sharing the chunks of the grid. Every process
times only the ``compute_loss_grid`` calls (repeats after one warm-up; the two ranks start each
repeat together after a barrier, and a repeat lasts until the slower rank ends); the script prints
the median points/s of each, the ratios to one process of 1 thread, the load average around the
runs, and checks that the grids agree.

    python benchmarks/bench_distributed.py            # 6 x 6 grid, 128 inputs, 3 repeats
    python benchmarks/bench_distributed.py --quick    # 4 x 4 grid, 64 inputs, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from resnets import resnet

RTOL = 1e-5


def job(n_examples: int):
    """The model (eval-mode statistics of its data), data and plane, the same in every process."""
    from loss_landscape_anim.results import Plane

    torch.manual_seed(0)
    model = resnet()
    X = torch.randn(n_examples, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (n_examples,), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        model.train()(X)  # running statistics of the data
    model.eval()
    origin = torch.nn.utils.parameters_to_vector(model.parameters()).detach().double().numpy()
    directions = np.random.default_rng(3).normal(size=(2, origin.size))
    directions *= np.linalg.norm(origin) / np.linalg.norm(directions, axis=1, keepdims=True) / 10
    path = np.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0]])
    return model, (X, y), Plane(origin, directions, path, np.zeros(3), None, "random")


def worker(args: argparse.Namespace) -> None:
    """One process: time ``repeats`` grids (after a warm-up) and write the times and the grid."""
    torch.set_num_threads(args.threads)
    from loss_landscape_anim import compute_loss_grid

    dist = None
    if args.world > 1:
        import torch.distributed as dist

        dist.init_process_group(
            "gloo", init_method=f"file://{args.init}", rank=args.rank, world_size=args.world
        )
    model, data, plane = job(args.examples)
    options = {"resolution": args.resolution, "chunk_size": args.chunk, "progress": False}
    grid = compute_loss_grid(model, data, plane, **options)  # warm-up
    times = []
    for _ in range(args.repeats):
        if dist is not None:
            dist.barrier()
        start = time.perf_counter()
        grid = compute_loss_grid(model, data, plane, **options)
        if dist is not None:
            dist.barrier()  # the repeat ends when the slower rank ends
        times.append(time.perf_counter() - start)
    out = Path(args.out) / f"rank{args.rank}.json"
    out.write_text(json.dumps({"times": times, "loss": grid.loss.tolist()}))
    if dist is not None:
        dist.destroy_process_group()


def run(world: int, threads: int, args: argparse.Namespace) -> tuple[list[float], np.ndarray]:
    """Launch ``world`` worker processes of ``threads`` threads; their times and rank 0's grid."""
    with tempfile.TemporaryDirectory() as folder:
        common = [
            "--examples", str(args.examples), "--resolution", str(args.resolution),
            "--chunk", str(args.chunk), "--repeats", str(args.repeats),
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    "--rank",
                    str(r),
                    "--world",
                    str(world),
                    "--threads",
                    str(threads),
                    "--init",
                    f"{folder}/rendezvous",
                    "--out",
                    folder,
                    *common,
                ],
                env=env,
            )
            for r in range(world)
        ]
        for p in processes:
            if p.wait(timeout=3600) != 0:
                raise SystemExit(f"a worker failed with exit code {p.returncode}")
        results = [json.loads((Path(folder) / f"rank{r}.json").read_text()) for r in range(world)]
    times = [max(ts) for ts in zip(*(r["times"] for r in results), strict=True)]
    return times, np.array(results[0]["loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for name, default in (("rank", 0), ("world", 1), ("threads", 1), ("examples", 128),
                          ("resolution", 6), ("chunk", 4), ("repeats", 3)):  # fmt: skip
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--init", default="")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.quick:
        args.examples, args.resolution, args.repeats = 64, 4, 1
    n_points = args.resolution**2
    print(
        f"ResNet-style model ({sum(p.numel() for p in resnet().parameters()):,} parameters), "
        f"{args.examples} random 3x32x32 inputs, {args.resolution}x{args.resolution} grid, "
        f"chunks of {args.chunk} points, {args.repeats} repeats; {os.cpu_count()} CPUs",
        file=sys.stderr if args.json else sys.stdout,
    )
    load_before = os.getloadavg()
    configs = {"1 process, 1 thread": (1, 1), "1 process, 2 threads": (1, 2)}
    configs["2 processes (gloo), 1 thread each"] = (2, 1)
    rows, grids = {}, {}
    for name, (world, threads) in configs.items():
        times, grids[name] = run(world, threads, args)
        rows[name] = statistics.median(times)
    load_after = os.getloadavg()
    reference = grids["1 process, 1 thread"]
    for name, grid in grids.items():
        np.testing.assert_allclose(grid, reference, rtol=RTOL, err_msg=name)
    base = rows["1 process, 1 thread"]
    if args.json:
        report = {
            "points": n_points,
            "seconds": rows,
            "points_per_second": {k: n_points / v for k, v in rows.items()},
            "load_average": {"before": load_before, "after": load_after},
        }
        print(json.dumps(report, indent=2))
        return
    print("| configuration | seconds (median) | points/s | vs 1 process, 1 thread |")
    print("|---|---|---|---|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.2f} | {n_points / seconds:.1f} | {base / seconds:.2f}x |")
    print(f"load average (1, 5, 15 min) before: {load_before}, after: {load_after}")
    print(f"grids agree (rtol {RTOL}); GPU not measured")


if __name__ == "__main__":
    main()
