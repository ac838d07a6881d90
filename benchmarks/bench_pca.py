"""Large trajectories: record a 25M-parameter model for 200 steps (spilled to disk), then its PCA by
the Gram matrix of large trajectories (float32 block products of the rows minus one row, the next
block read during the products) against the float64 Gram method used before it, in the same
process, interleaved repeat by repeat, with medians of the wall and CPU times; then
``project(trajectory, "pca")`` end to end both ways (the new one reads the path's coordinates off
the Gram matrix; before, a third pass over the rows computed them).

The model is an MLP 2048 -> 4096 -> 4096 -> 10 (25,219,082 parameters), trained full batch on 64
random examples with ``train(..., record_every=1)`` (201 rows: 20.3 GB in float32, spilled to a
temporary file past the recorder's 512 MiB). The child process's peak RSS is read after training
and after the first (new) PCA; targets: peak RSS within 1.5 GB over the model's own size (its
weights, 0.1 GB), the PCA at least 3x faster than the float64 Gram method, explained variances
within 1e-3 of its.

    OMP_NUM_THREADS=1 python benchmarks/bench_pca.py             # the case above, 3 repeats
    OMP_NUM_THREADS=1 python benchmarks/bench_pca.py --quick     # 2.5M parameters, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RSS_OVER_MODEL = 1.5e9


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_child(width: int, steps: int, repeats: int) -> dict:
    import torch
    from torch import nn

    from loss_landscape_anim import project, train
    from loss_landscape_anim.directions import pca

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(width // 2, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, 10),
    )
    n_params = sum(p.numel() for p in model.parameters())
    X, y = torch.randn(64, width // 2), torch.randint(0, 10, (64,))
    out: dict = {
        "params": n_params,
        "model_bytes": n_params * 4,
        "threads": torch.get_num_threads(),
    }
    start = time.perf_counter()
    trajectory = train(
        model,
        (X, y),
        steps,
        optimizer="sgd",
        learning_rate=0.05,
        record_every=1,
        progress=False,
        seed=0,
    )
    out["train_s"] = time.perf_counter() - start
    out["rows"] = len(trajectory)
    out["spilled"] = type(trajectory.params).__name__ == "SpilledRows"
    out["peak_rss_after_train"] = peak_rss_bytes()

    def run(large: bool) -> tuple[float, float, list[float]]:
        pca.LARGE_PCA_BYTES = 0 if large else 1 << 62
        wall, cpu = time.perf_counter(), time.process_time()
        _, explained = pca.pca_directions([trajectory.params], seed=0)
        return time.perf_counter() - wall, time.process_time() - cpu, explained.tolist()

    times: dict[str, list[tuple[float, float]]] = {"large": [], "gram": []}
    explained: dict[str, list[float]] = {}
    for k in range(repeats):
        for name in ("large", "gram"):
            wall, cpu, explained[name] = run(name == "large")
            times[name].append((wall, cpu))
            if k == 0 and name == "large":
                out["peak_rss_after_new_pca"] = peak_rss_bytes()
    project_times: dict[str, list[float]] = {"large": [], "gram": []}
    for _ in range(min(repeats, 2)):  # project(): the PCA, then the path's coordinates
        for name in ("large", "gram"):
            pca.LARGE_PCA_BYTES = 0 if name == "large" else 1 << 62
            start = time.perf_counter()
            project(trajectory, "pca")
            project_times[name].append(time.perf_counter() - start)
    out["project_s"] = project_times
    out["explained"] = explained
    for name, pairs in times.items():
        out[f"{name}_wall"] = [w for w, _ in pairs]
        out[f"{name}_cpu"] = [c for _, c in pairs]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2.5M parameters, one repeat")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the report")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, default=4096, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=200, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.width, args.steps, args.repeats)))
        return
    width, repeats = (1280, 1) if args.quick else (args.width, args.repeats)
    with tempfile.TemporaryDirectory(prefix="bench-pca-") as tmp:
        env = dict(os.environ, TMPDIR=tmp, MPLBACKEND="Agg")
        command = [sys.executable, __file__, "--child", "--width", str(width)]
        command += ["--steps", str(args.steps), "--repeats", str(repeats)]
        load = os.getloadavg()[0]
        proc = subprocess.run(command, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        left = sorted(p.name for p in Path(tmp).glob("trajectory-*"))
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    if args.json:
        print(json.dumps({**r, "load": load, "spill_files_left": left}))
        return
    report(r, load, left)


def report(r: dict, load: float, left: list[str]) -> None:
    gb = 1e9
    print(
        f"{r['params']:,} parameters ({r['model_bytes'] / gb:.2f} GB), {r['rows']} rows "
        f"({r['rows'] * r['model_bytes'] / gb:.1f} GB of float32 rows), spilled: {r['spilled']}; "
        f"torch threads {r['threads']}; load average at start {load:.2f}"
    )
    print(
        f"training {r['train_s']:.1f} s; peak RSS after it {r['peak_rss_after_train'] / gb:.3f} GB"
    )
    over = r["peak_rss_after_new_pca"] - r["model_bytes"]
    verdict = "meets" if over <= TARGET_RSS_OVER_MODEL else "MISSES"
    print(
        f"peak RSS after the new PCA {r['peak_rss_after_new_pca'] / gb:.3f} GB: {over / gb:.3f} GB "
        f"over the model's own size ({verdict} the 1.5 GB target)"
    )
    med = {k: statistics.median(r[k]) for k in ("large_wall", "gram_wall", "large_cpu", "gram_cpu")}
    print(f"{'PCA':<34}{'median wall s':>14}{'median CPU s':>14}   all wall s")
    print(
        f"{'Gram of large trajectories (new)':<34}{med['large_wall']:>14.1f}{med['large_cpu']:>14.1f}"
        f"   {[round(v, 1) for v in r['large_wall']]}"
    )
    print(
        f"{'float64 Gram (before)':<34}{med['gram_wall']:>14.1f}{med['gram_cpu']:>14.1f}"
        f"   {[round(v, 1) for v in r['gram_wall']]}"
    )
    print(
        f"speedup: {med['gram_wall'] / med['large_wall']:.2f}x wall, "
        f"{med['gram_cpu'] / med['large_cpu']:.2f}x CPU (target >= 3x)"
    )
    new, old = r["explained"]["large"], r["explained"]["gram"]
    diff = max(abs(a - b) for a, b in zip(new, old, strict=True))
    print(
        f"explained variance: new {new}, before {old}: largest difference {diff:.2e} (target 1e-3)"
    )
    new_p, old_p = (statistics.median(r["project_s"][k]) for k in ("large", "gram"))
    print(
        f"project(trajectory, 'pca') end to end (PCA and the path's coordinates): new {new_p:.1f} s "
        f"(coordinates read off the Gram matrix), before {old_p:.1f} s (a third pass over the "
        f"rows): {old_p / new_p:.2f}x"
    )
    print(f"spill files left behind: {left or 'none'}")


if __name__ == "__main__":
    main()
