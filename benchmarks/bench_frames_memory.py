"""Peak memory of the default job against its number of frames: rendering streams frames to the
writer, so 1,001 frames should peak about where 301 do.

Each job (``loss_landscape_anim(n_epochs=E, seed=0)``, every recorded step a frame) runs in a fresh
process; its peak RSS (``ru_maxrss``) and the time of each phase (from the package's log) are read
back. The GIF of each job is written to ``--out``.

    python benchmarks/bench_frames_memory.py            # 300 and 1,000 epochs: 301 and 1,001 frames
    python benchmarks/bench_frames_memory.py --quick    # 50 and 150 epochs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, logging, re, resource, sys
phases = {}
class Phases(logging.Handler):
    def emit(self, record):
        m = re.match(r"(.+) took ([0-9.]+) s", record.getMessage())
        if m:
            phases[m.group(1)] = float(m.group(2))
log = logging.getLogger("loss_landscape_anim")
log.setLevel(logging.INFO)
log.addHandler(Phases())
from loss_landscape_anim import loss_landscape_anim
loss_landscape_anim(n_epochs=int(sys.argv[1]), seed=0, progress=False, output_filename=sys.argv[2])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"peak_rss_mb": peak, "phases": phases}))
"""


def run_job(epochs: int, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(epochs), f"job{epochs}.gif"],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 and 150 epochs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-frames-memory"))
    args = parser.parse_args()
    epochs = (50, 150) if args.quick else (300, 1000)
    load = [round(v, 2) for v in os.getloadavg()]
    results = {e: run_job(e, args.out) for e in epochs}
    if args.json:
        print(json.dumps({"load_avg": load, "jobs": results}))
        return
    print(f"load average at start: {load}")
    for e, r in results.items():
        render = r["phases"].get("rendering", float("nan"))
        print(f"{e + 1:5d} frames: peak RSS {r['peak_rss_mb']:7.0f} MB, rendering {render:6.2f} s")
    small, large = (results[e]["peak_rss_mb"] for e in epochs)
    print(f"difference: {large - small:.0f} MB")


if __name__ == "__main__":
    main()
