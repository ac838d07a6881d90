"""The GPU benchmark's parts that run anywhere: ResNet-56 (He et al. 2016) against its
architecture, the section runner (a failing section is recorded and the others run, time
budgets), the atomic JSON file, and how the test-suite section reads pytest's report."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    """The benchmark modules, imported from ``benchmarks/`` (they import each other by name)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        names = ("resnets", "bench_grid", "bench_gpu", "gpu_runner", "gpu_grids", "gpu_checks")
        yield {name: importlib.import_module(name) for name in names}
    finally:
        sys.path.remove(str(BENCHMARKS))


def resnet56_params(blocks: int = 9, widths=(16, 32, 64), classes: int = 10) -> int:
    """ResNet-56's parameter count from its architecture: a 3 x 3 convolution of 16 channels with
    BatchNorm (weight and bias), per basic block two 3 x 3 convolutions and two BatchNorms,
    option-A shortcuts without parameters, and a linear layer from 64 features."""
    total = 9 * 3 * widths[0] + 2 * widths[0]
    width = widths[0]
    for channels in widths:
        for _ in range(blocks):
            total += 9 * width * channels + 9 * channels * channels + 4 * channels
            width = channels
    return total + width * classes + classes


def test_resnet56_has_the_architectures_parameters_and_56_layers(bench):
    model = bench["resnets"].resnet56()
    count = sum(p.numel() for p in model.parameters())
    assert count == resnet56_params()
    assert abs(count - 850_000) <= 10_000  # the paper's 0.85 M
    weighted = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(weighted) == 56
    strides = [m.stride for m in weighted if isinstance(m, nn.Conv2d) and m.stride != (1, 1)]
    assert strides == [(2, 2), (2, 2)]  # where the second and third stages start
    logits = model.eval()(torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert logits.shape == (3, 10) and torch.isfinite(logits).all()


def test_the_option_a_shortcut_subsamples_and_pads_with_zero_channels(bench):
    shortcut = bench["resnets"].PadShortcut(16, 32, 2)
    x = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    out = shortcut(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert not out[:, 16:].any()
    assert list(shortcut.parameters()) == []
    with pytest.raises(ValueError, match="Expected shortcut 'projection' or 'pad' but got 'A'"):
        bench["resnets"].Block(16, 32, 2, shortcut="A")


def test_resnet56_grid_values_match_the_per_point_loop(bench):
    grid, gpu_grids = bench["bench_grid"], bench["gpu_grids"]
    from loss_landscape_anim.evaluate import LossEvaluator

    job = grid.resnet_job(4, 3, 3, bench["resnets"].resnet56, "ResNet-56")
    coords = np.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 0.5]])
    ours = LossEvaluator(job.model, (job.X, job.y)).plane_losses(
        job.plane.origin, job.plane.directions, coords
    )
    reference = grid.reference_loop(job, coords, torch.device("cpu"), None)
    tol = gpu_grids.oracle_tolerance(job.model, torch.device("cpu"), None)
    np.testing.assert_allclose(ours, reference, rtol=tol)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_budget_says_whether_a_step_fits(bench):
    clock = Clock()
    budget = bench["bench_gpu"].Budget(10, clock)
    clock.now += 4
    assert budget.elapsed() == 4 and budget.left() == 6
    assert budget.fits(6) and not budget.fits(6.5)


def test_a_failing_section_is_recorded_and_the_others_still_run(bench, tmp_path):
    runner = bench["bench_gpu"]
    ran, writes = [], []

    def ok(name):
        def section(budget):
            ran.append(name)
            return {"value": len(name), "budget": budget.seconds}

        return section

    def broken(budget):
        ran.append("broken")
        raise RuntimeError("CUDA out of memory in the fake section")

    sections = {"first": ok("first"), "broken": broken, "last": ok("last")}
    budgets = {"first": 5, "broken": 5, "last": 7}
    report = runner.run_sections(
        sections, budgets, {}, lambda r: writes.append(json.dumps(r, default=str))
    )
    assert ran == ["first", "broken", "last"]
    entries = report["sections"]
    assert [entries[n]["status"] for n in sections] == ["ok", "error", "ok"]
    assert entries["broken"]["error"] == "RuntimeError: CUDA out of memory in the fake section"
    assert "in broken" in entries["broken"]["traceback"]
    assert "result" not in entries["broken"]
    assert entries["last"]["result"] == {"value": 4, "budget": 7}
    # the file is rewritten after every section, failing or not
    assert [list(json.loads(w)["sections"]) for w in writes] == [
        ["first"],
        ["first", "broken"],
        ["first", "broken", "last"],
    ]


def test_sections_get_what_is_left_of_the_runs_time_and_none_once_it_is_spent(bench):
    runner, clock = bench["bench_gpu"], Clock()
    total = runner.Budget(12, clock)
    seen = []

    def section(budget):
        seen.append(budget.seconds)
        clock.now += 9
        return {}

    sections = {"a": section, "b": section, "c": section}
    report = runner.run_sections(sections, dict.fromkeys(sections, 10), {}, lambda r: None, total)
    assert seen == [10, 3]
    assert report["sections"]["c"]["status"] == "skipped"
    assert "time limit" in report["sections"]["c"]["reason"]


def test_the_json_is_written_atomically(bench, tmp_path, monkeypatch):
    runner = bench["bench_gpu"]
    path = tmp_path / "gpu.json"
    data = {"x": np.float32(1.5), "rows": (np.arange(3), Path("a")), "n": np.int64(7)}
    runner.write_json(path, data)
    assert json.loads(path.read_text()) == {"x": 1.5, "rows": [[0, 1, 2], "a"], "n": 7}

    def torn(self, text, *args, **kwargs):
        Path.write_bytes(self, text[:10].encode())
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", torn)
    with pytest.raises(OSError, match="disk full"):
        runner.write_json(path, {"y": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text())["n"] == 7  # the earlier file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["gpu.json"]  # no partial file left


def test_surface_points_must_be_positive(bench):
    args = bench["bench_gpu"].parse_args(["--out", "x.json", "--surface-points", "0"])
    with pytest.raises(SystemExit, match="--surface-points must be >= 1, got 0"):
        bench["bench_gpu"].make_plan(args)


def test_the_resolution_shrinks_to_fit_the_budget(bench):
    fit = bench["gpu_grids"].fit_resolution
    assert fit(30, per_point=0.01, fixed_s=1.0, seconds=100.0) == 30  # 9 s + 1 s fit
    assert fit(30, per_point=1.0, fixed_s=4.0, seconds=40.0) == 6  # 36 + 4 s
    assert fit(30, per_point=1.0, fixed_s=4.0, seconds=40.9) == 6  # 7 x 7 would be 53 s
    assert fit(30, per_point=1.0, fixed_s=50.0, seconds=40.0) == 2  # never below 2


def test_test_files_that_import_a_missing_package_are_found(bench, tmp_path):
    tests = tmp_path / "tests"
    (tests / "sub").mkdir(parents=True)
    (tests / "helper_oracle.py").write_text("X = 1\n")
    (tests / "test_local.py").write_text("import numpy\nfrom helper_oracle import X\n")
    (tests / "sub" / "test_missing.py").write_text("import numpy\nimport no_such_pkg_xyz.sub\n")
    (tests / "test_inside.py").write_text("def test_f():\n    import no_such_pkg_abc\n")
    assert bench["gpu_checks"].missing_imports(tests) == {
        "tests/sub/test_missing.py": ["no_such_pkg_xyz"]
    }


def test_pytests_report_is_counted_with_skip_reasons_and_missing_packages(bench, tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_fake.py").write_text(
        textwrap.dedent(
            """
            import pytest

            def test_passes():
                assert True

            @pytest.mark.skip(reason="needs CUDA")
            def test_skipped():
                pass

            def test_lacks_a_package():
                import no_such_pkg_xyz

            def test_needs_a_tool():
                raise RuntimeError("Writing MP4 needs ffmpeg: install it")

            def test_fails():
                assert 1 == 2
            """
        )
    )
    xml = tmp_path / "junit.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    counts = bench["gpu_checks"].junit_counts(xml)
    assert (counts["passed"], counts["skipped"], counts["failed"]) == (1, 1, 3)
    assert counts["skip_reasons"] == {"needs CUDA": 1}
    assert counts["failed_for_missing_package"] == {
        "no_such_pkg_xyz": ["test_fake::test_lacks_a_package"],
        "ffmpeg": ["test_fake::test_needs_a_tool"],
    }
    assert len(counts["failures"]) == 1 and "test_fake::test_fails" in counts["failures"][0]
