"""Grids and path losses on ``torch.distributed``: two CPU processes (gloo) share the chunks, each
evaluates only its own, and both return what one process returns; the checkpoint is resumed and
written by rank 0; errors reach every rank; the CLI runs under ``torchrun``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import loss_landscape_anim.evaluate.schedule as schedule
from loss_landscape_anim import compute_loss_grid, curvature_grid, path_losses, project, train
from loss_landscape_anim._runtime import is_writer
from loss_landscape_anim.evaluate.ranks import process_group_ranks
from loss_landscape_anim.models import MLP
from oracle import RTOL, random_plane, spirals

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("dist_worker.py")
GRID = {"resolution": 6, "chunk_size": 4, "progress": False}
CURVATURE = {"resolution": 4, "chunk_size": 3, "progress": False, "method": "lanczos"}
TIMEOUT = 300


def environment() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def wait_all(processes: list[subprocess.Popen], logs: list[Path]) -> None:
    try:
        for process in processes:
            process.wait(timeout=TIMEOUT)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, log in zip(processes, logs, strict=True):
        assert process.returncode == 0, log.read_text()[-3000:]


def test_two_ranks_share_the_grid_and_return_the_single_process_results(
    tmp_path, monkeypatch
) -> None:
    torch.manual_seed(0)
    model = MLP(2, 3, hidden_dim=8)
    data = spirals(300)
    plane = random_plane(model)
    expected = compute_loss_grid(model, data, plane, **GRID)
    trajectory = train(model, data, 4, seed=0, progress=False)
    expected_path = path_losses(model, data, trajectory, project(trajectory, "pca"))

    checkpoint = tmp_path / "grid.npz"  # 3 of 9 chunks done, by one process
    calls = {"n": 0}
    original = schedule.chunk_losses

    def failing(strategy, data_, sl):
        if calls["n"] == 3:
            raise RuntimeError("pre-empted")
        calls["n"] += 1
        return original(strategy, data_, sl)

    monkeypatch.setattr(schedule, "chunk_losses", failing)
    with pytest.raises(RuntimeError, match="pre-empted"):
        compute_loss_grid(model, data, plane, checkpoint=checkpoint, **GRID)
    monkeypatch.undo()

    init, logs = tmp_path / "rendezvous", [tmp_path / f"log{r}.txt" for r in range(2)]
    with logs[0].open("w") as log0, logs[1].open("w") as log1:
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER),
                    str(r),
                    "2",
                    str(init),
                    str(tmp_path),
                    str(checkpoint),
                ],
                env=environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for r, log in enumerate((log0, log1))
        ]
        wait_all(processes, logs)

    curvature = curvature_grid(model, data, plane, **CURVATURE)
    ranks = [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(2)]
    messages = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for result in ranks:
        np.testing.assert_allclose(result["grid"], expected.loss, rtol=RTOL)
        np.testing.assert_allclose(result["path_true"], expected_path.true, rtol=RTOL)
        np.testing.assert_allclose(result["path_projected"], expected_path.projected, rtol=RTOL)
        np.testing.assert_allclose(result["resumed"], expected.loss, rtol=RTOL)
        np.testing.assert_allclose(result["alone"], expected.loss, rtol=RTOL)
    # each rank evaluated only its share: 9 chunks dealt in turn, then the 6 the checkpoint lacked
    assert [int(r["grid_chunks"]) for r in ranks] == [5, 4]
    assert [int(r["resumed_chunks"]) for r in ranks] == [3, 3]
    assert [int(r["alone_chunks"]) for r in ranks] == [9, 9]  # distributed=False
    # the convexity map too: 16 points in 6 chunks of 3, dealt in turn
    assert [int(r["curvature_chunks"]) for r in ranks] == [3, 3]
    scale = np.abs(curvature.lambda_max).max()
    for result in ranks:
        np.testing.assert_allclose(result["curvature_max"], curvature.lambda_max, atol=1e-6 * scale)
        np.testing.assert_allclose(result["curvature_min"], curvature.lambda_min, atol=1e-6 * scale)
    with np.load(checkpoint) as saved:
        assert saved["done"].all()  # completed by rank 0
    for r, message in enumerate(messages):
        assert "resolution: 6 in the checkpoint, 7 now" in message["other_job"]
        assert ("raised on rank 0" in message["other_job"]) == (r == 1)
        assert "Expected the same evaluation data on every rank but rank 1 has" in message["data"]
        # ranks asking for other jobs are refused before they exchange anything
        assert "rank 1 asked for another job (margin: 0.3 on rank 0, 0.4)" in message["margin"]
        assert "resolution: 6 on rank 0, 7" in message["resolution"]
        assert "chunk: 4 on rank 0, 5" in message["chunk_size"]


def test_without_a_process_group_nothing_is_distributed() -> None:
    assert process_group_ranks(None) is None
    assert process_group_ranks(False) is None
    assert is_writer()
    with pytest.raises(
        ValueError, match=r"distributed=True needs an initialised torch\.distributed"
    ):
        process_group_ranks(True)
    with pytest.raises(
        ValueError, match="Expected distributed to be True, False or None but got 'yes'"
    ):
        process_group_ranks("yes")


def test_the_cli_runs_under_torchrun_and_only_rank_0_writes(tmp_path) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "loss_landscape_anim", "--epochs", "3", "--resolution", "5", "--frames", "3",
        "--output", "out.gif", "--no-progress", "-v",
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with Image.open(tmp_path / "out.gif") as gif:
        assert gif.n_frames == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "out.gif"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "model.pt",
        "model.trajectory.npz",
    ]
    # rendering happened once, on rank 0
    assert result.stderr.count("rendering took") == 1
