"""One rank of the distributed tests (run by test_distributed.py as a separate process):
``python dist_worker.py RANK WORLD_SIZE INIT_FILE OUT_DIR CHECKPOINT``.

It joins a gloo process group, evaluates what the test compares with one process's results,
counts the chunks it evaluated itself, and saves everything to ``OUT_DIR/rank<RANK>.npz``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

import loss_landscape_anim.evaluate.curvature as curvature_module
import loss_landscape_anim.evaluate.schedule as schedule
from loss_landscape_anim import compute_loss_grid, curvature_grid, path_losses, project, train
from loss_landscape_anim.errors import DataError, IncompatibleFileError
from loss_landscape_anim.models import MLP
from oracle import random_plane, spirals

GRID = {"resolution": 6, "chunk_size": 4, "progress": False}
CURVATURE = {"resolution": 4, "chunk_size": 3, "progress": False, "method": "lanczos"}


def main() -> None:
    rank, world, init_file, out, checkpoint = sys.argv[1:6]
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=int(rank), world_size=int(world)
    )
    calls = {"n": 0}
    original = schedule.chunk_losses

    def counting(strategy, data, sl):
        calls["n"] += 1
        return original(strategy, data, sl)

    schedule.chunk_losses = counting
    making_job = curvature_module.extremes_job

    def counting_job(*args, **kwargs):
        job = making_job(*args, **kwargs)

        def counted(sl):
            calls["curvature"] = calls.get("curvature", 0) + 1
            return job(sl)

        return counted

    curvature_module.extremes_job = counting_job
    torch.manual_seed(0)
    model = MLP(2, 3, hidden_dim=8)
    data = spirals(300)
    plane = random_plane(model)
    results: dict[str, np.ndarray] = {}
    messages: dict[str, str] = {}

    results["grid"] = compute_loss_grid(model, data, plane, **GRID).loss
    results["grid_chunks"] = np.array(calls["n"])

    trajectory = train(model, data, 4, seed=0, progress=False)
    path_plane = project(trajectory, "pca")
    losses = path_losses(model, data, trajectory, path_plane, chunk_size=2)
    results["path_true"], results["path_projected"] = losses.true, losses.projected

    calls["n"] = 0
    results["resumed"] = compute_loss_grid(model, data, plane, checkpoint=checkpoint, **GRID).loss
    results["resumed_chunks"] = np.array(calls["n"])

    try:
        compute_loss_grid(model, data, plane, checkpoint=checkpoint, **{**GRID, "resolution": 7})
    except IncompatibleFileError as exc:
        messages["other_job"] = str(exc)
    try:
        compute_loss_grid(model, spirals(300 + int(rank)), plane, **GRID)
    except DataError as exc:
        messages["data"] = str(exc)

    curvature = curvature_grid(model, data, plane, **CURVATURE)
    results["curvature_max"], results["curvature_min"] = curvature.lambda_max, curvature.lambda_min
    results["curvature_chunks"] = np.array(calls.get("curvature", 0))

    for name, change in (
        ("margin", {"margin": 0.3 + 0.1 * int(rank)}),
        ("resolution", {"resolution": 6 + int(rank)}),
        ("chunk_size", {"chunk_size": 4 + int(rank)}),
    ):
        try:
            compute_loss_grid(model, data, plane, **{**GRID, **change})
        except ValueError as exc:
            messages[name] = str(exc)

    calls["n"] = 0
    results["alone"] = compute_loss_grid(model, data, plane, distributed=False, **GRID).loss
    results["alone_chunks"] = np.array(calls["n"])

    np.savez(Path(out) / f"rank{rank}.npz", **results)
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(messages))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
