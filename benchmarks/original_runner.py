"""Time the ORIGINAL PyPI package loss-landscape-anim==0.1.10 on its default job.

Run it with the original's own venv (made by benchmarks/setup_original_venv.sh),
never with this project's venv; it does not import this repository's package:

    MPLBACKEND=Agg .orig-venv/bin/python benchmarks/original_runner.py --repeats 3

The job is ``loss_landscape_anim(n_epochs=300)``: spirals data, 1-hidden-layer MLP,
Adam, PCA directions, loss grid, GIF. Each repeat runs in a fresh child process (so
import times are those of a new process) inside a temporary working directory.
Phases are timed by wrapping the original's functions and methods at run time.
One JSON object goes to stdout; logs and the original's progress output go to stderr.

Run-time patches (the original targets torch 2.1 / matplotlib 3.8 / torchvision 0.16):
  * a stub ``torchvision`` (only the names the original imports) is put on sys.path
    after pytorch_lightning and torchmetrics are imported, so those see no torchvision;
  * ``torch.load`` defaults to ``weights_only=False`` (torch >= 2.6 changed the default);
  * ``Line2D.set_data(x, y)`` wraps scalar x, y in lists (matplotlib >= 3.9 rejects them);
  * ImageMagick resource limits come from benchmarks/imagemagick/policy.xml via
    MAGICK_CONFIGURE_PATH, and matplotlib is pointed at the real /usr/bin/convert.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
POLICY_DIR = HERE / "imagemagick"
DEFAULT_EPOCHS = 300
QUICK_EPOCHS = 50
CONVERT = "/usr/bin/convert"
# A repeat during which other processes used more than this many cores is "noisy".
NOISY_SHARE = 0.1

log = logging.getLogger("original_runner")

# Stub torchvision: the original imports these names at import time but only uses
# them for MNIST, which the default (spirals) job never touches.
_STUB_FILES = {
    "__init__.py": "from . import datasets, transforms\n",
    "datasets.py": (
        "class MNIST:\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        raise RuntimeError('torchvision is a stub in this benchmark venv')\n"
    ),
    "transforms.py": (
        "def _unavailable(*args, **kwargs):\n"
        "    raise RuntimeError('torchvision is a stub in this benchmark venv')\n"
        "Compose = Resize = ToTensor = Normalize = _unavailable\n"
    ),
}


class Phases:
    """Accumulates wall-clock seconds per named phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, name: str, dt: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + dt

    def wrap(self, owner: Any, attr: str, name: str, after=None) -> None:
        """Replace owner.attr by a timed wrapper; ``after(args, result)`` may record facts."""
        orig = getattr(owner, attr)

        @functools.wraps(orig)
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                result = orig(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t0)
            if after is not None:
                after(args, result)
            return result

        setattr(owner, attr, timed)


class _TorchProxy:
    """Stands in for ``torch`` inside the original's main module to time save/load only."""

    def __init__(self, real: Any, **overrides: Any) -> None:
        self._real = real
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _busy_cpu_s() -> float:
    """Machine-wide busy CPU seconds so far (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _wait_for_idle(max_wait: float, busy_cores: float = 0.25) -> float:
    """Wait (up to max_wait s) until other processes use < busy_cores; return seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait:
        b0 = _busy_cpu_s()
        time.sleep(1.0)
        if _busy_cpu_s() - b0 < busy_cores:
            break
    return time.perf_counter() - t0


def _write_stub(root: Path) -> Path:
    pkg = root / "torchvision"
    pkg.mkdir(parents=True)
    for fname, text in _STUB_FILES.items():
        (pkg / fname).write_text(text)
    return root


def _plain_torch_loop(torch: Any, x: Any, y: Any, n_classes: int, steps: int, record: bool):
    """Same MLP shape, data, Adam(lr=5e-3) and full-batch steps, without Lightning."""
    nn = torch.nn
    model = nn.Sequential(nn.Linear(x.shape[1], 50), nn.ReLU(), nn.Linear(50, n_classes))
    opt = torch.optim.Adam(model.parameters(), 5e-3)
    path = []
    model(x).sum().backward()  # warm-up: first-call allocations, not timed
    model.zero_grad()
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        out = model(x)
        loss = nn.functional.cross_entropy(out, y)
        if record:  # what the original's training_step also does each step
            flat = torch.cat([p.detach().flatten() for p in model.parameters()])
            acc = (out.argmax(dim=1) == y).float().mean()
            path.append((flat, loss.detach(), acc))
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def run_child(args: argparse.Namespace) -> None:
    """One repeat: import, patch, run the original job, write facts/timings as JSON."""
    phases = Phases()
    facts: dict[str, Any] = {}

    t0 = time.perf_counter()
    import torch

    phases.add("import_torch", time.perf_counter() - t0)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    t0 = time.perf_counter()
    import pytorch_lightning as pl
    import torchmetrics  # noqa: F401  (imported before the torchvision stub on purpose)

    phases.add("import_lightning", time.perf_counter() - t0)

    t0 = time.perf_counter()
    import matplotlib
    import matplotlib.animation as manim
    import matplotlib.lines
    import matplotlib.pyplot
    import numpy as np
    import sklearn.decomposition  # noqa: F401

    phases.add("import_other_deps", time.perf_counter() - t0)

    workdir = Path(tempfile.mkdtemp(prefix="orig-lla-"))
    sys.path.append(str(_write_stub(workdir / "stubs")))

    t0 = time.perf_counter()
    import importlib

    llmain = importlib.import_module("loss_landscape_anim.main")
    llland = importlib.import_module("loss_landscape_anim.loss_landscape")
    llmodel = importlib.import_module("loss_landscape_anim.model")
    lldata = importlib.import_module("loss_landscape_anim.datamodule")
    phases.add("import_original_pkg", time.perf_counter() - t0)

    # --- compatibility patches -------------------------------------------------------
    real_load = torch.load

    @functools.wraps(real_load)
    def load_full(*a, **kw):
        kw.setdefault("weights_only", False)
        return real_load(*a, **kw)

    torch.load = load_full

    real_set_data = matplotlib.lines.Line2D.set_data

    @functools.wraps(real_set_data)
    def set_data(self, *a):
        if len(a) == 2 and all(np.ndim(v) == 0 for v in a):
            a = ([a[0]], [a[1]])
        return real_set_data(self, *a)

    matplotlib.lines.Line2D.set_data = set_data
    matplotlib.rcParams["animation.convert_path"] = CONVERT

    if args.writer == "pillow":
        real_save = manim.Animation.save

        @functools.wraps(real_save)
        def save_pillow(self, *a, **kw):
            kw["writer"] = "pillow"  # the original passes writer="imagemagick" by keyword
            return real_save(self, *a, **kw)

        manim.Animation.save = save_pillow

    # --- phase timers ------------------------------------------------------------------
    def on_data(a, _r):
        dm = a[0]
        facts["n_data_points"] = int(dm.X.shape[0])
        facts["input_dim"] = int(dm.X.shape[1])
        facts["num_classes"] = int(dm.num_classes)
        facts["_data"] = (dm.X, dm.y)

    def on_model(a, _r):
        facts["model_param_count"] = sum(p.numel() for p in a[0].parameters())

    def on_grid(a, _r):
        grid = a[0]
        facts["grid_shape"] = list(grid.loss_values_2d.shape)

    def on_frame(a, _r):
        facts["n_frames"] = facts.get("n_frames", 0) + 1
        facts["frame_size_px"] = list(a[0].frame_size)
        facts["writer_class"] = type(a[0]).__name__

    def on_step(_a, _r):
        facts["train_steps"] = facts.get("train_steps", 0) + 1

    def on_train_loader(_a, loader):
        facts["dataloader_num_workers"] = loader.num_workers

    phases.wrap(lldata.SpiralsDataModule, "__init__", "data_load", on_data)
    phases.wrap(lldata.SpiralsDataModule, "train_dataloader", "data_load", on_train_loader)
    phases.wrap(llmodel.MLP, "__init__", "model_init", on_model)
    phases.wrap(pl.Trainer, "__init__", "trainer_init")
    phases.wrap(pl.Trainer, "fit", "train_fit")
    # Inside fit: the model's training_step, and Adam.step (its closure runs
    # training_step + backward, then the update); the rest of fit is Lightning's.
    phases.wrap(llmodel.MLP, "training_step", "train_step_fn", on_step)
    phases.wrap(torch.optim.Adam, "step", "train_optimizer_step")
    proxy = _TorchProxy(torch)
    phases.wrap(proxy, "save", "model_save_load")  # resolves torch.save via the proxy
    phases.wrap(proxy, "load", "model_save_load")
    llmain.torch = proxy
    phases.wrap(llland.DimReduction, "__init__", "pca")
    phases.wrap(llland.DimReduction, "reduce", "pca")
    phases.wrap(llland.LossGrid, "build_params_grid", "grid_build_params")
    phases.wrap(llland.LossGrid, "compute_loss_2d", "grid_loss_eval")
    phases.wrap(llland.LossGrid, "__init__", "grid_total", on_grid)
    phases.wrap(llmain, "animate_contour", "animation_total")
    # Per frame: the original's update function, then a full canvas draw (draw_idle,
    # since blit=False) -- before grab_frame renders the figure again for the writer.
    phases.wrap(manim.FuncAnimation, "_draw_next_frame", "gif_frame_update")
    for cls in (manim.ImageMagickWriter, manim.PillowWriter):
        phases.wrap(cls, "grab_frame", "gif_draw_frames", on_frame)
        phases.wrap(cls, "finish", "gif_write")

    real_anim_save = manim.Animation.save

    @functools.wraps(real_anim_save)
    def anim_save(*a, **kw):
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        try:
            return real_anim_save(*a, **kw)
        finally:
            phases.add("anim_save_total", time.perf_counter() - t0)
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
            phases.add("gif_child_process_cpu", cpu)

    manim.Animation.save = anim_save

    # --- the default job -------------------------------------------------------------
    os.chdir(workdir)
    log.info("running loss_landscape_anim(n_epochs=%d) in %s", args.epochs, workdir)
    t0 = time.perf_counter()
    llmain.loss_landscape_anim(n_epochs=args.epochs)
    phases.add("run", time.perf_counter() - t0)

    gif = workdir / "sample.gif"
    facts["gif_bytes"] = gif.stat().st_size
    if args.keep_gif:
        shutil.copyfile(gif, args.keep_gif)

    s = dict(phases.seconds)  # snapshot: the plain loops below also call Adam.step
    s["import_total"] = sum(
        s[k]
        for k in ("import_torch", "import_lightning", "import_other_deps", "import_original_pkg")
    )
    s["total"] = s["import_total"] + s["run"]
    s["anim_figure_setup"] = s["animation_total"] - s["anim_save_total"]
    s["run_other"] = s["run"] - sum(
        s.get(k, 0.0)
        for k in (
            "data_load",
            "model_init",
            "trainer_init",
            "train_fit",
            "model_save_load",
            "pca",
            "grid_total",
            "animation_total",
        )
    )

    # Same 300 full-batch Adam steps in a plain torch loop, same process and data.
    x, y = facts.pop("_data")
    for key, record in (("plain_torch_loop", False), ("plain_torch_loop_recording", True)):
        # best of 3: these loops are short, so one run is easily skewed by other load
        s[key] = min(
            _plain_torch_loop(torch, x, y, facts["num_classes"], args.epochs, record)
            for _ in range(3)
        )

    facts["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    facts["torch_num_threads"] = torch.get_num_threads()
    Path(args.child_result).write_text(json.dumps({"seconds": s, "facts": facts}))
    shutil.rmtree(workdir, ignore_errors=True)


def _versions() -> dict[str, str]:
    """Package versions in this (the original's) venv, without importing them."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in (
        "loss-landscape-anim",
        "torch",
        "pytorch-lightning",
        "lightning-utilities",
        "torchmetrics",
        "numpy",
        "matplotlib",
        "scikit-learn",
        "scipy",
        "pillow",
        "tqdm",
        "importlib_resources",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    try:
        first = subprocess.run(
            [CONVERT, "-version"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[0]
        out["imagemagick"] = first.removeprefix("Version: ")
    except (OSError, subprocess.CalledProcessError, IndexError):
        out["imagemagick"] = "not found"
    return out


def run_parent(args: argparse.Namespace) -> dict[str, Any]:
    """Run the repeats as child processes and aggregate their timings."""
    env = dict(os.environ, MPLBACKEND="Agg")
    env.setdefault("MAGICK_CONFIGURE_PATH", str(POLICY_DIR))
    if args.writer == "imagemagick" and not os.access(CONVERT, os.X_OK):
        sys.exit(f"{CONVERT} not found: run benchmarks/setup_original_venv.sh first")

    runs, walls, cpus, foreign, waited, discarded = [], [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="orig-lla-results-") as tmp:
        result = Path(tmp) / "run.json"
        base = [sys.executable, __file__, "--child-result", str(result)]
        base += ["--epochs", str(args.epochs), "--writer", args.writer]
        if args.torch_threads:
            base += ["--torch-threads", str(args.torch_threads)]
        retries = args.retry_noisy
        while len(runs) < args.repeats:
            cmd = base + (["--keep-gif", args.keep_gif] if args.keep_gif and not runs else [])
            wait = round(_wait_for_idle(args.wait_idle), 1) if args.wait_idle else 0.0
            log.info("repeat %d/%d", len(runs) + 1, args.repeats)
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            busy0 = _busy_cpu_s()
            t0 = time.perf_counter()
            # The original prints progress to stdout: send it to our stderr.
            subprocess.run(cmd, env=env, stdout=sys.stderr, check=True)
            wall = time.perf_counter() - t0
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
            # CPU used by processes that are not ours: other work sharing the machine.
            other = max(0.0, _busy_cpu_s() - busy0 - cpu)
            if other > NOISY_SHARE * wall and retries > 0:
                retries -= 1
                log.warning("repeat disturbed by %.1f CPU-s of other work; rerunning", other)
                discarded.append({"process_wall": round(wall, 2), "foreign_cpu": round(other, 2)})
                continue
            runs.append(json.loads(result.read_text()))
            walls.append(wall)
            cpus.append(cpu)
            foreign.append(other)
            waited.append(wait)

    raw: dict[str, list[float]] = {}
    for run, wall, cpu, other in zip(runs, walls, cpus, foreign, strict=True):
        extra = {"process_wall": wall, "process_cpu": cpu, "foreign_cpu_during_run": other}
        for k, v in {**run["seconds"], **extra}.items():
            raw.setdefault(k, []).append(round(v, 4))
    median = {k: round(statistics.median(v), 3) for k, v in raw.items()}
    minimum = {k: round(min(v), 3) for k, v in raw.items()}
    varying = ("gif_bytes", "peak_rss_mib")  # seed=None: the GIF differs per run
    facts = dict(runs[0]["facts"])
    facts["facts_differing_across_repeats"] = sorted(
        k for r in runs for k in r["facts"] if k not in varying and r["facts"][k] != facts.get(k)
    )
    for key in varying:
        facts[key + "_per_repeat"] = [r["facts"][key] for r in runs]
    facts["grid_evaluations"] = facts["grid_shape"][0] * facts["grid_shape"][1]
    fit, plain = median["train_fit"], median["plain_torch_loop"]
    return {
        "package": "loss-landscape-anim==0.1.10 (original, PyPI)",
        "call": f"loss_landscape_anim(n_epochs={args.epochs})",
        "quick": args.quick,
        "n_epochs": args.epochs,
        "repeats": args.repeats,
        "writer_requested": args.writer,
        "torch_threads_requested": args.torch_threads,
        "idle_wait_before_repeat_s": waited,
        "discarded_noisy_repeats": discarded,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "versions": _versions(),
        "facts": facts,
        "median_s": median,
        "min_s": minimum,
        "raw_s": raw,
        "lightning_vs_plain": {
            "fit_median_s": fit,
            "plain_torch_loop_median_s": plain,
            "plain_recording_median_s": median["plain_torch_loop_recording"],
            "fit_over_plain": round(fit / plain, 1) if plain else None,
        },
        "notes": [
            "each repeat is a fresh child process; import_* are cold-process import times",
            "train_fit is pl.Trainer.fit (includes the original's DataLoader with 7 "
            "persistent workers, Lightning's end-of-fit checkpoint and progress bar)",
            "grid_total = LossGrid.__init__ = grid_build_params + grid_loss_eval + pickle",
            "train_optimizer_step = Adam.step incl. its closure (training_step + backward); "
            "train_step_fn = the original's training_step alone",
            "anim_save_total = gif_frame_update + gif_draw_frames + gif_write + writer "
            "setup; gif_frame_update = the original's animate() + a full canvas draw",
            "gif_draw_frames = writer.grab_frame (Agg render + pipe to the writer); "
            "gif_write = writer.finish (ImageMagick: waits for convert to encode the GIF)",
            "gif_child_process_cpu = CPU seconds of processes reaped during anim.save "
            "(the convert process)",
            "foreign_cpu_during_run = machine busy CPU-s not used by our processes "
            "(other work on the shared 2-core machine); large values mean noisy timings",
            "plain_torch_loop* (best of 3 in each repeat) are the same full-batch Adam "
            "steps on the same data and MLP shape without Lightning; *_recording also "
            "stores flat params/loss/acc per step",
        ],
        "patches": [
            "stub torchvision on sys.path after importing pytorch_lightning/torchmetrics",
            "torch.load(weights_only=False) by default",
            "Line2D.set_data wraps scalar x, y in lists",
            f"rcParams['animation.convert_path'] = {CONVERT}; MAGICK_CONFIGURE_PATH="
            f"{env['MAGICK_CONFIGURE_PATH']}",
        ]
        + (["Animation.save writer forced to 'pillow'"] if args.writer == "pillow" else []),
    }


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="[%(name)s] %(message)s")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help=f"1 repeat, {QUICK_EPOCHS} epochs")
    p.add_argument("--epochs", type=int, default=None, help=f"default {DEFAULT_EPOCHS}")
    p.add_argument("--writer", choices=("imagemagick", "pillow"), default="imagemagick")
    p.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    p.add_argument(
        "--wait-idle", type=float, default=120.0, help="max s to wait for an idle machine"
    )
    p.add_argument(
        "--retry-noisy", type=int, default=3, help="reruns allowed for disturbed repeats"
    )
    p.add_argument("--keep-gif", help="copy the first repeat's GIF to this path")
    p.add_argument("--child-result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.keep_gif:
        args.keep_gif = str(Path(args.keep_gif).resolve())
    if args.quick:
        args.repeats = 1
        args.epochs = args.epochs or QUICK_EPOCHS
    args.epochs = args.epochs or DEFAULT_EPOCHS

    if args.child_result:
        run_child(args)
        return
    print(json.dumps(run_parent(args), indent=2))


if __name__ == "__main__":
    main()
