"""End-to-end benchmark: ``loss_landscape_anim(n_epochs=300)``, ours against the original 0.1.10.

The job is the default one of both packages: spirals data (1,083 points), MLP (303 parameters),
Adam, PCA directions, a 100 x 100 loss grid and a 900 x 600 GIF. Every repeat runs in a fresh
Python process in an empty temporary directory (MPLBACKEND=Agg), so import times are cold-process
times and the files the job writes go nowhere.

Ours: each repeat times ``import loss_landscape_anim``, then the call with ``seed=0,
progress=False``; the phases are read from the lines the package logs at INFO on
``loss_landscape_anim.pipeline.stages`` ("training took 0.24 s", ...). A second fresh process per repeat
times ``import torch`` alone: the import-overhead target is that ``import loss_landscape_anim``
adds less than 0.3 s to it. The original: ``benchmarks/original_runner.py`` run with the
original's venv ``.orig-venv`` (see ``benchmarks/setup_original_venv.sh``), whose JSON gives its
per-phase medians.

    python benchmarks/bench_end_to_end.py            # 300 epochs, 3 repeats of each
    python benchmarks/bench_end_to_end.py --quick    # 50 epochs (the runner's --quick), 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORIG_PYTHON = ROOT / ".orig-venv" / "bin" / "python"
ORIG_RUNNER = ROOT / "benchmarks" / "original_runner.py"
IMPORT_OVERHEAD_TARGET_S = 0.3

# One repeat of ours, in a fresh process. Phases are logged by loss_landscape_anim.pipeline.stages to stderr;
# the import time, call time and facts about the result go to stdout as JSON.
OURS_CHILD = """
import json, logging, sys, time
t0 = time.perf_counter()
import loss_landscape_anim
import_s = time.perf_counter() - t0
logging.basicConfig(stream=sys.stderr, format="%(name)s: %(message)s")
logging.getLogger("loss_landscape_anim.pipeline.stages").setLevel(logging.INFO)
t0 = time.perf_counter()
animation = loss_landscape_anim.loss_landscape_anim(n_epochs={epochs}, seed=0, progress=False)
call_s = time.perf_counter() - t0
print(json.dumps({{
    "import_s": import_s,
    "call_s": call_s,
    "n_frames": animation.n_frames,
    "size": list(animation.size),
    "gif_bytes": animation.path.stat().st_size,
}}))
"""
# import torch alone; then, in the same process, the increment of importing the package on top.
TORCH_CHILD = """
import time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import loss_landscape_anim
print(t1 - t0, time.perf_counter() - t1)
"""
PHASE_LINE = re.compile(
    r"^loss_landscape_anim\.pipeline\.stages: (?P<phase>.+) took (?P<s>[0-9.]+) s$"
)
OUR_PHASES = ("training", "projection", "loss grid", "path losses", "decision regions", "rendering")

# (row label, our phase or key, the original's median_s keys summed; None: no counterpart)
TABLE = (
    ("import", "import", ("import_total",)),
    ("training (+ save)", "training", ("trainer_init", "train_fit", "model_save_load")),
    ("projection (PCA)", "projection", ("pca",)),
    ("loss grid", "loss grid", ("grid_total",)),
    ("path losses", "path losses", None),
    ("decision regions", "decision regions", None),
    ("rendering (GIF)", "rendering", ("animation_total",)),
    ("other (in the call)", "other", ("data_load", "model_init", "run_other")),
    ("call", "call", ("run",)),
    ("import + call", "import_plus_call", ("total",)),
    ("process wall", "process_wall", ("process_wall",)),
)


def load_avg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def child_env() -> dict[str, str]:
    return dict(os.environ, MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")


def time_torch_import() -> tuple[float, float]:
    """(``import torch`` in a fresh process, then ``import loss_landscape_anim`` after it)."""
    out = subprocess.run(
        [sys.executable, "-c", TORCH_CHILD],
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    torch_s, increment_s = (float(v) for v in out.stdout.split())
    return torch_s, increment_s


def run_ours_once(epochs: int) -> dict[str, float]:
    """One repeat in a fresh process and an empty temp dir: seconds per phase, and facts."""
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as workdir:
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", OURS_CHILD.format(epochs=epochs)],
            cwd=workdir,
            env=child_env(),
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"our run failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    phases = {}
    for line in out.stderr.splitlines():
        match = PHASE_LINE.match(line.strip())
        if match:
            phases[match["phase"]] = phases.get(match["phase"], 0.0) + float(match["s"])
    missing = {"training", "projection", "loss grid", "rendering"} - set(phases)
    if missing:
        sys.exit(f"our run logged no timing for {sorted(missing)}; stderr:\n{out.stderr[-3000:]}")
    logged = sum(phases.get(p, 0.0) for p in OUR_PHASES)
    return {
        **phases,
        "import": result["import_s"],
        "call": result["call_s"],
        "other": result["call_s"] - logged,
        "import_plus_call": result["import_s"] + result["call_s"],
        "process_wall": wall,
        "n_frames": result["n_frames"],
        "size": result["size"],
        "gif_bytes": result["gif_bytes"],
    }


def run_ours(epochs: int, repeats: int) -> dict:
    runs, torch_imports, increments = [], [], []
    for _ in range(repeats):
        torch_s, increment_s = time_torch_import()
        torch_imports.append(torch_s)
        increments.append(increment_s)
        runs.append(run_ours_once(epochs))
    keys = [k for k in runs[0] if isinstance(runs[0][k], float)]
    median = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in keys}
    median["import_torch"] = statistics.median(torch_imports)
    median["import_after_torch"] = statistics.median(increments)
    return {
        "median_s": median,
        "raw_s": {k: [r.get(k) for r in runs] for k in keys}
        | {
            "import_torch": torch_imports,
            "import_after_torch": increments,
        },
        "n_frames": runs[0]["n_frames"],
        "size": runs[0]["size"],
        "gif_bytes": [r["gif_bytes"] for r in runs],
    }


def run_original(epochs: int, repeats: int, quick: bool) -> dict | None:
    if not ORIG_PYTHON.exists():
        print(
            f"original skipped: {ORIG_PYTHON.parent.parent} does not exist; create it with "
            "`bash benchmarks/setup_original_venv.sh`",
            file=sys.stderr,
        )
        return None
    cmd = [str(ORIG_PYTHON), str(ORIG_RUNNER), "--epochs", str(epochs)]
    # --quick: no waiting for an idle machine and no reruns of disturbed repeats.
    cmd += (
        ["--quick", "--wait-idle", "0", "--retry-noisy", "0"]
        if quick
        else ["--repeats", str(repeats)]
    )
    out = subprocess.run(cmd, env=child_env(), capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"original_runner failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


def original_seconds(orig: dict, keys: tuple[str, ...] | None) -> float | None:
    if keys is None:
        return None
    median = orig["median_s"]
    return sum(median.get(k, 0.0) for k in keys)


def table_rows(ours: dict, orig: dict | None) -> list[dict]:
    rows = []
    for label, ours_key, orig_keys in TABLE:
        o = ours["median_s"].get(ours_key)
        r = original_seconds(orig, orig_keys) if orig else None
        rows.append(
            {
                "phase": label,
                "ours_s": o,
                "original_s": r,
                "ratio_original_over_ours": (r / o) if o and r is not None else None,
            }
        )
    return rows


def fmt(value: float | None, spec: str = ".3f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def print_table(result: dict) -> None:
    ours, orig = result["ours"], result["original"]
    print(
        f"loss_landscape_anim(n_epochs={result['epochs']}); medians of {result['repeats']} "
        f"repeat(s); load average at start {result['load_start']}, at end {result['load_end']}"
    )
    print(
        f"ours: seed=0, {ours['n_frames']} frames {ours['size'][0]}x{ours['size'][1]}, GIF "
        f"{ours['gif_bytes'][0] / 1e6:.2f} MB"
    )
    if orig:
        facts = orig["facts"]
        print(
            f"original 0.1.10: {facts.get('n_frames')} frames {facts.get('frame_size_px')}, "
            f"GIF {facts['gif_bytes_per_repeat'][0] / 1e6:.2f} MB, writer "
            f"{facts.get('writer_class')}, foreign CPU-s during its repeats "
            f"{orig['raw_s'].get('foreign_cpu_during_run')}"
        )
    print(f"{'phase':<22} {'ours s':>9} {'original s':>11} {'orig/ours':>10}")
    for row in result["table"]:
        print(
            f"{row['phase']:<22} {fmt(row['ours_s']):>9} {fmt(row['original_s']):>11} "
            f"{fmt(row['ratio_original_over_ours'], '.1f', 'x'):>10}"
        )
    imp = result["import_overhead"]
    verdict = "meets" if imp["overhead_s"] < IMPORT_OVERHEAD_TARGET_S else "MISSES"
    print(
        f"import torch alone {imp['import_torch_s']:.3f} s; import loss_landscape_anim "
        f"{imp['import_package_s']:.3f} s; overhead {imp['overhead_s']:.3f} s ({verdict} the "
        f"< {IMPORT_OVERHEAD_TARGET_S} s target); in one process, importing it after torch "
        f"takes {imp['in_process_increment_s']:.3f} s"
    )
    total = next(r for r in result["table"] if r["phase"] == "process wall")
    if total["ratio_original_over_ours"] is not None:
        print(
            f"total (process wall): the original takes {total['ratio_original_over_ours']:.1f}x "
            "as long as ours"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 epochs, 1 repeat of each")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per side")
    parser.add_argument("--epochs", type=int, default=None, help="default 300 (--quick: 50)")
    parser.add_argument("--skip-original", action="store_true", help="time ours only")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    epochs = args.epochs or (50 if args.quick else 300)

    load_start = load_avg()
    ours = run_ours(epochs, repeats)
    orig = None if args.skip_original else run_original(epochs, repeats, args.quick)
    load_end = load_avg()
    median = ours["median_s"]
    result = {
        "epochs": epochs,
        "repeats": repeats,
        "load_start": load_start,
        "load_end": load_end,
        "cpu_count": os.cpu_count(),
        "ours": ours,
        "original": orig,
        "table": table_rows(ours, orig),
        "import_overhead": {
            "import_torch_s": median["import_torch"],
            "import_package_s": median["import"],
            "overhead_s": median["import"] - median["import_torch"],
            "in_process_increment_s": median["import_after_torch"],
            "target_s": IMPORT_OVERHEAD_TARGET_S,
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print_table(result)


if __name__ == "__main__":
    main()
