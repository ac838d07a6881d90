"""Same-run A/B of two checkouts of the package: is a change as fast as what it replaces?

Each case runs in a fresh Python process with ``PYTHONPATH=<checkout>/src``, the two sides
interleaved repeat by repeat (A, B, A, B, ...), so load on a shared machine hits both alike; the
table gives each side's median wall time and CPU time (the process's, all threads: less moved by
other processes than the wall time), and the ratios B / A of the medians (below 1: B is faster).

    python benchmarks/bench_ab.py --a /path/to/old/checkout --b . --repeats 5
    python benchmarks/bench_ab.py --a ../old --b . --cases spirals_grid,lenet_grid --quick

The cases use only the public API both sides have (the four stages and the one-call API):

- ``spirals_grid``: ``compute_loss_grid`` of the trained default MLP, 100 x 100.
- ``lenet_grid``: ``compute_loss_grid`` of LeNet-5 on random MNIST-shaped inputs, 12 x 12.
- ``curvature_map``: ``curvature_grid`` of the trained default MLP, 25 x 25.
- ``default_job``: ``loss_landscape_anim(n_epochs=300, seed=0)`` end to end.
- ``full_run``: the default job with ``curvature=True``, ``line_output`` and Hessian directions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

#: The trained default MLP on spirals and its PCA plane (setup, not timed).
_SPIRALS_SETUP = """
import time, torch
from loss_landscape_anim import MLP, SpiralsDataModule, project, train
data = SpiralsDataModule()
torch.manual_seed(0)
model = MLP(input_dim=2, num_classes=3)
trajectory = train(model, data, n_epochs={epochs}, seed=0, progress=False)
trained = MLP(input_dim=2, num_classes=3)
trained.load_state_dict(trajectory.state_dict())
plane = project(trajectory, "pca")
"""

CASES = {
    "spirals_grid": _SPIRALS_SETUP
    + """
from loss_landscape_anim import compute_loss_grid
t0, c0 = time.perf_counter(), time.process_time()
grid = compute_loss_grid(trained, data, plane, resolution={resolution}, progress=False)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
check = float(grid.loss_min)
""",
    "lenet_grid": """
import time, torch
from loss_landscape_anim import LeNet, compute_loss_grid
from loss_landscape_anim.results import Plane
import numpy as np
g = torch.Generator().manual_seed(0)
X = torch.randn({n_inputs}, 1, 32, 32, generator=g)
y = torch.randint(0, 10, ({n_inputs},), generator=g)
torch.manual_seed(0)
model = LeNet()
flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double().numpy()
rng = np.random.default_rng(0)
directions = rng.standard_normal((2, flat.size)) * 0.01
plane = Plane(flat, directions, np.zeros((1, 2)), np.zeros(1))
t0, c0 = time.perf_counter(), time.process_time()
grid = compute_loss_grid(model, (X, y), plane, resolution={lenet_resolution}, margin=1.0,
                         progress=False)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
check = float(grid.loss_min)
""",
    "curvature_map": _SPIRALS_SETUP
    + """
from loss_landscape_anim import curvature_grid
t0, c0 = time.perf_counter(), time.process_time()
curv = curvature_grid(trained, data, plane, resolution={curvature_resolution}, progress=False)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
check = float(np.nanmax(curv.lambda_max)) if (np := __import__("numpy")) else 0.0
""",
    "default_job": """
import time
from loss_landscape_anim import loss_landscape_anim
t0, c0 = time.perf_counter(), time.process_time()
loss_landscape_anim(n_epochs={epochs}, seed=0, progress=False)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
check = 0.0
""",
    "full_run": """
import time
from loss_landscape_anim import loss_landscape_anim
t0, c0 = time.perf_counter(), time.process_time()
loss_landscape_anim(n_epochs={epochs}, seed=0, progress=False, curvature=True,
                    reduction_method="hessian", line_output="line.png")
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
check = 0.0
""",
}

_FOOTER = """
import json
print(json.dumps({{"seconds": seconds, "cpu": cpu, "check": check}}))
"""


def run_case(checkout: Path, case: str, params: dict[str, int], threads: int | None) -> dict:
    code = (CASES[case] + _FOOTER).format(**params)
    env = {**os.environ, "PYTHONPATH": str(checkout / "src"), "MPLBACKEND": "Agg"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{case} failed in {checkout}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", type=Path, required=True, help="checkout A (the baseline)")
    parser.add_argument("--b", type=Path, default=Path("."), help="checkout B (the change)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed runs of each side first (file caches)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="OMP_NUM_THREADS (default: unset)"
    )
    parser.add_argument("--quick", action="store_true", help="small jobs, one repeat")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {sorted(CASES)}")
    quick = args.quick
    params = {
        "epochs": 30 if quick else 300,
        "resolution": 20 if quick else 100,
        "n_inputs": 200 if quick else 1000,
        "lenet_resolution": 4 if quick else 12,
        "curvature_resolution": 5 if quick else 25,
    }
    repeats = 1 if quick else args.repeats
    sides = {"A": args.a.resolve(), "B": args.b.resolve()}
    times: dict[str, dict[str, list[float]]] = {c: {"A": [], "B": []} for c in cases}
    cpu: dict[str, dict[str, list[float]]] = {c: {"A": [], "B": []} for c in cases}
    checks: dict[str, dict[str, float]] = {c: {} for c in cases}
    load = [os.getloadavg()[0]]
    for case in cases:
        for _ in range(0 if quick else args.warmup):
            for checkout in sides.values():
                run_case(checkout, case, params, args.threads)
        for _ in range(repeats):
            for side, checkout in sides.items():
                got = run_case(checkout, case, params, args.threads)
                times[case][side].append(got["seconds"])
                cpu[case][side].append(got["cpu"])
                checks[case][side] = got["check"]
    load.append(os.getloadavg()[0])
    rows = []
    for case in cases:
        a, b = statistics.median(times[case]["A"]), statistics.median(times[case]["B"])
        rows.append(
            {
                "case": case,
                "A_s": a,
                "B_s": b,
                "ratio": b / a,
                "checks": checks[case],
                "A_all": times[case]["A"],
                "B_all": times[case]["B"],
                "A_cpu_s": statistics.median(cpu[case]["A"]),
                "B_cpu_s": statistics.median(cpu[case]["B"]),
            }
        )
    if args.json:
        print(
            json.dumps({"rows": rows, "load": load, "sides": {k: str(v) for k, v in sides.items()}})
        )
        return
    print(f"A = {sides['A']}\nB = {sides['B']}\nload average {load[0]:.2f} -> {load[1]:.2f}")
    print(
        f"{'case':<16}{'A median s':>12}{'B median s':>12}{'B / A':>8}"
        f"{'A cpu s':>10}{'B cpu s':>10}{'B / A':>8}   checks A / B"
    )
    for r in rows:
        c = r["checks"]
        print(
            f"{r['case']:<16}{r['A_s']:>12.3f}{r['B_s']:>12.3f}{r['ratio']:>8.3f}"
            f"{r['A_cpu_s']:>10.3f}{r['B_cpu_s']:>10.3f}{r['B_cpu_s'] / r['A_cpu_s']:>8.3f}   "
            f"{c.get('A', float('nan')):.6g} / {c.get('B', float('nan')):.6g}"
        )


if __name__ == "__main__":
    main()
