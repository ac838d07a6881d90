"""Loss grids of transformers on the CPU.

1. ``tinygpt``: the grid of :class:`TinyGPT` on :class:`SequenceDataModule` (256 additions, the
   default job of ``--model tiny-gpt``) by ``compute_loss_grid`` (its automatic strategy; and with
   vmap forced over chunks of 8 points), against the per-point loop of ``bench_grid.py``: for each
   point, write the weights into a copy of the model (``vector_to_parameters``) and run all the
   data forward without gradients. All in one process, on the same points of a PCA plane of a
   30-epoch run, interleaved repeat by repeat; medians of the wall and CPU times (the process's,
   all threads), points/s and ratios, and the largest difference from the loop.
2. ``gpt2``: a GPT-2-small-shaped model (``GPT2Config()``: 124M parameters, random weights, no
   download) on 8 random sequences of 128 tokens, a 5 x 5 grid of a random plane, in a child
   process: points/s and its peak RSS.

    OMP_NUM_THREADS=1 python benchmarks/bench_transformers.py            # both, 3 repeats
    OMP_NUM_THREADS=1 python benchmarks/bench_transformers.py --case tinygpt --quick
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch


def tinygpt(repeats: int, resolution: int, loop_points: int) -> dict:
    from loss_landscape_anim import SequenceDataModule, TinyGPT, compute_loss_grid, project, train
    from loss_landscape_anim.analysis.loss_grid import grid_axes, grid_coords
    from loss_landscape_anim.losses import token_cross_entropy

    data = SequenceDataModule()
    torch.manual_seed(0)
    model = TinyGPT()
    trajectory = train(model, data, 30, seed=0, progress=False)
    trained = trajectory.apply_to(copy.deepcopy(model))
    plane = project(trajectory, "pca")
    ids, labels = data.dataset.inputs["input_ids"], data.dataset.labels
    coords = grid_coords(*grid_axes([plane.path_2d], resolution, 0.3))
    subset = np.linspace(0, len(coords) - 1, loop_points).astype(int)

    def loop() -> np.ndarray:
        work = copy.deepcopy(trained).eval()
        out = np.empty(len(subset))
        with torch.no_grad():
            for k, (a, b) in enumerate(coords[subset]):
                weights = torch.as_tensor(plane.point(a, b), dtype=torch.float32)
                torch.nn.utils.vector_to_parameters(weights, work.parameters())
                out[k] = float(token_cross_entropy(work(ids), labels, shift=True))
        return out

    sides = {
        "ours": lambda: compute_loss_grid(
            trained, data, plane, resolution=resolution, progress=False
        ).loss.reshape(-1),
        "vmap8": lambda: compute_loss_grid(
            trained,
            data,
            plane,
            resolution=resolution,
            progress=False,
            strategy="vmap",
            chunk_size=8,
            memory_budget=2**30,
        ).loss.reshape(-1),
        "loop": loop,
    }
    counts = {"ours": len(coords), "vmap8": len(coords), "loop": len(subset)}
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    values: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for name, run in sides.items():
            w, c = time.perf_counter(), time.process_time()
            values[name] = run()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    reference = values["loop"]
    return {
        "points": counts,
        "wall": wall,
        "cpu": cpu,
        "max_rel_diff": {
            k: float(np.max(np.abs(values[k][subset] - reference) / np.abs(reference)))
            for k in ("ours", "vmap8")
        },
        "threads": torch.get_num_threads(),
    }


def gpt2_child() -> dict:
    from transformers import GPT2Config, GPT2LMHeadModel

    from loss_landscape_anim import compute_loss_grid
    from loss_landscape_anim.results import Plane

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config()).eval()
    n_params = sum(p.numel() for p in model.parameters())
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (8, 128), generator=generator)
    batch = {"input_ids": ids, "labels": ids}
    origin = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double().numpy()
    rng = np.random.default_rng(0)
    directions = rng.standard_normal((2, origin.size))
    directions *= 2e-4  # a few % of the weights' norm; in place: 2 GB of float64 already
    plane = Plane(origin, directions, np.array([[-1.0, -0.5], [0.0, 0.0]]), np.zeros(2))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    w, c = time.perf_counter(), time.process_time()
    grid = compute_loss_grid(model, batch, plane, resolution=5, progress=False)
    seconds, cpu = time.perf_counter() - w, time.process_time() - c
    return {
        "params": n_params,
        "seconds": seconds,
        "cpu": cpu,
        "points_per_s": 25 / seconds,
        "loss_range": [float(grid.loss.min()), float(grid.loss.max())],
        "peak_rss_before": rss_before,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "threads": torch.get_num_threads(),
    }


def report_tinygpt(r: dict) -> None:
    med = {k: statistics.median(v) for k, v in r["wall"].items()}
    cpu = {k: statistics.median(v) for k, v in r["cpu"].items()}
    pps = {k: r["points"][k] / med[k] for k in med}
    print(f"TinyGPT on SequenceDataModule (256 sequences), torch threads {r['threads']}")
    print(f"{'':<30}{'points':>8}{'median s':>10}{'points/s':>10}{'CPU s/point':>13}")
    for name, label in (
        ("ours", "compute_loss_grid (auto)"),
        ("vmap8", "vmap, 8 points a chunk"),
        ("loop", "per-point loop"),
    ):
        print(
            f"{label:<30}{r['points'][name]:>8}{med[name]:>10.2f}{pps[name]:>10.1f}"
            f"{cpu[name] / r['points'][name]:>13.4f}"
        )
    print(
        f"ours / loop: {pps['ours'] / pps['loop']:.2f}x points/s, "
        f"{(cpu['loop'] / r['points']['loop']) / (cpu['ours'] / r['points']['ours']):.2f}x CPU "
        f"per point (target >= 2x); vmap / loop: {pps['vmap8'] / pps['loop']:.2f}x"
    )
    print(f"largest relative difference from the loop: {r['max_rel_diff']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=["tinygpt", "gpt2"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(gpt2_child()))
        return
    cases = args.case or ["tinygpt", "gpt2"]
    results: dict = {"load_start": os.getloadavg()[0]}
    if "tinygpt" in cases:
        repeats, resolution, loop = (1, 8, 16) if args.quick else (args.repeats, 20, 100)
        results["tinygpt"] = tinygpt(repeats, resolution, loop)
    if "gpt2" in cases:
        proc = subprocess.run(
            [sys.executable, __file__, "--child"], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            sys.exit(f"gpt2 child failed:\n{proc.stderr[-3000:]}")
        results["gpt2"] = json.loads(proc.stdout.strip().splitlines()[-1])
    results["load_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results))
        return
    print(f"load average {results['load_start']:.2f}")
    if "tinygpt" in results:
        report_tinygpt(results["tinygpt"])
    if "gpt2" in results:
        r = results["gpt2"]
        print(
            f"GPT-2 small shape ({r['params']:,} parameters, random weights), 8 x 128 tokens, "
            f"5 x 5 grid: {r['seconds']:.1f} s, {r['points_per_s']:.2f} points/s, "
            f"{r['cpu'] / 25:.1f} CPU s/point, peak RSS {r['peak_rss'] / 1e9:.2f} GB "
            f"(after loading the model {r['peak_rss_before'] / 1e9:.2f} GB), torch threads "
            f"{r['threads']}, losses {r['loss_range']}"
        )
    print(f"load average {results['load_end']:.2f}")


if __name__ == "__main__":
    main()
