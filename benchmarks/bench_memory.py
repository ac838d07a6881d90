"""Memory benchmark: peak RSS recording every step of a ~1M-parameter model, then its PCA.

An MLP 1000 -> 1000 -> 10 (1,011,010 parameters) trains full batch on 64 random examples with
``train(..., record_every=1)`` for 2,000 steps, then ``project(trajectory, "pca")``. Kept in
memory as float32, that trajectory would take T x P x 4 bytes (8 GB); the recorder spills rows to
a temporary file past its memory limit and PCA streams over it in blocks. The run is one fresh
child process, so ``ru_maxrss`` (the peak resident set, KiB on Linux) is this job's alone. The
child's TMPDIR is an empty directory made for it: after it exits, the spill file must be gone.
Target: peak RSS < 1.5 GB.

    python benchmarks/bench_memory.py            # 2,000 steps
    python benchmarks/bench_memory.py --quick    # 300 steps
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_BYTES = 1.5e9
INPUT_DIM, HIDDEN_DIM, N_CLASSES, N_EXAMPLES = 1000, 1000, 10, 64


def load_avg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run_child(steps: int) -> dict:
    """Train, record every step, PCA; peak RSS and wall time after each."""
    import numpy as np
    import torch

    from loss_landscape_anim import MLP, project, train

    torch.manual_seed(0)
    model = MLP(INPUT_DIM, N_CLASSES, hidden_dim=HIDDEN_DIM, num_hidden_layers=1)
    X = torch.randn(N_EXAMPLES, INPUT_DIM)
    y = torch.randint(0, N_CLASSES, (N_EXAMPLES,))
    n_params = sum(p.numel() for p in model.parameters())
    out: dict = {"params": n_params, "peak_rss_start": peak_rss_bytes()}

    start = time.perf_counter()
    trajectory = train(model, (X, y), n_epochs=steps, record_every=1, progress=False)
    out["train_s"] = time.perf_counter() - start
    out["peak_rss_after_train"] = peak_rss_bytes()
    out["rss_after_train"] = current_rss_bytes()
    out["rows"] = len(trajectory)
    out["spilled"] = isinstance(trajectory.params, np.memmap)
    spill = getattr(trajectory.params, "filename", None)
    out["spill_file"] = spill
    out["spill_file_exists_in_process"] = bool(spill) and os.path.exists(spill)

    start = time.perf_counter()
    plane = project(trajectory, "pca")
    out["pca_s"] = time.perf_counter() - start
    out["peak_rss_after_pca"] = peak_rss_bytes()
    out["rss_after_pca"] = current_rss_bytes()
    out["explained_variance"] = [float(v) for v in plane.explained_variance]
    out["torch_threads"] = torch.get_num_threads()
    return out


def run_parent(steps: int) -> dict:
    load_start = load_avg()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        spill_dir = Path(tmp) / "tmpdir"
        spill_dir.mkdir()
        env = dict(os.environ, TMPDIR=str(spill_dir), MPLBACKEND="Agg")
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", "--steps", str(steps)],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        # torch itself leaves an empty "torchinductor_<user>" folder there (first optimizer step).
        left = sorted(p.name for p in spill_dir.glob("trajectory-*"))
        other = sorted(p.name for p in spill_dir.iterdir() if not p.name.startswith("trajectory-"))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(
        steps=steps,
        process_wall_s=wall,
        in_memory_trajectory_bytes=result["rows"] * result["params"] * 4,
        spill_files_left=left,
        other_files_left=other,
        load_start=load_start,
        load_end=load_avg(),
    )
    return result


def print_report(r: dict) -> None:
    gb = 1e9
    print(
        f"MLP {INPUT_DIM}-{HIDDEN_DIM}-{N_CLASSES}: {r['params']:,} parameters, {r['steps']} "
        f"full-batch steps on {N_EXAMPLES} examples, every step recorded ({r['rows']} rows); "
        f"torch threads {r['torch_threads']}"
    )
    print(f"load average at start {r['load_start']}, at end {r['load_end']}")
    print(
        f"in-memory float32 trajectory would be {r['in_memory_trajectory_bytes'] / gb:.2f} GB; "
        f"spilled to disk: {r['spilled']}"
    )
    print(f"{'stage':<16} {'wall s':>8} {'peak RSS GB':>12} {'RSS now GB':>11}")
    print(f"{'start (imports)':<16} {'':>8} {r['peak_rss_start'] / gb:>12.3f} {'':>11}")
    print(
        f"{'train':<16} {r['train_s']:>8.2f} {r['peak_rss_after_train'] / gb:>12.3f} "
        f"{r['rss_after_train'] / gb:>11.3f}"
    )
    print(
        f"{'+ PCA':<16} {r['pca_s']:>8.2f} {r['peak_rss_after_pca'] / gb:>12.3f} "
        f"{r['rss_after_pca'] / gb:>11.3f}"
    )
    peak = r["peak_rss_after_pca"]
    verdict = "meets" if peak < TARGET_BYTES else "MISSES"
    print(f"peak RSS {peak / gb:.3f} GB: {verdict} the < {TARGET_BYTES / gb:.1f} GB target")
    print(
        f"spill file {r['spill_file']}: present in the process after train(): "
        f"{r['spill_file_exists_in_process']}; spill files left in the child's TMPDIR after "
        f"exit: {r['spill_files_left'] or 'none'} (other entries: {r['other_files_left']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 steps")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--steps", type=int, default=None, help="default 2,000 (--quick: 300)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps = args.steps or (300 if args.quick else 2000)
    if args.child:
        print(json.dumps(run_child(steps)))
        return
    result = run_parent(steps)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print_report(result)


if __name__ == "__main__":
    main()
