"""The ``loss-landscape-anim`` command: a tiny real run, one-line errors with exit code 2 and no
traceback, through ``main([...])`` and through the installed entry point; a fuzz test of the parser."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from loss_landscape_anim import ConvergenceError, DataError
from loss_landscape_anim.cli import PROG, build_parser, main

TINY = ["--epochs", "5", "--resolution", "8", "--frames", "5", "--no-progress"]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """The command writes checkpoints/ to the working directory: keep it in the test's folder."""
    monkeypatch.chdir(tmp_path)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def run_module(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "loss_landscape_anim", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert lines[0].startswith(f"{PROG}: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# -- a tiny real run -----------------------------------------------------------------------------


def test_main_tiny_run(tmp_path, capsys):
    out = tmp_path / "x.gif"
    assert main([*TINY, "--output", str(out)]) == 0
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.n_frames == 5
        assert im.size == (900, 600)
    assert files_under(tmp_path) == [
        "checkpoints",
        "checkpoints/model.pt",
        "checkpoints/model.trajectory.npz",
        "x.gif",
    ]
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def test_main_line_and_interactive_write_beside_the_animation(tmp_path):
    assert main([*TINY, "--output", "runs/x.gif", "--line", "--interactive"]) == 0
    with Image.open(tmp_path / "runs" / "x.line.png") as im:
        assert im.format == "PNG"
        assert im.size[0] >= 600 and im.size[1] >= 400
    page = (tmp_path / "runs" / "x.interactive.html").read_text()
    assert "Plotly.newPlot" in page and '"type":"surface"' in page.replace(" ", "")
    assert {"runs/x.gif", "runs/x.line.png", "runs/x.interactive.html"} <= set(
        files_under(tmp_path)
    )


def test_identical_runs_write_identical_interactive_html(tmp_path):
    for name in ("a", "b"):
        assert main([*TINY, "--output", f"{name}.gif", "--interactive"]) == 0
    first = (tmp_path / "a.interactive.html").read_bytes()
    assert first == (tmp_path / "b.interactive.html").read_bytes()


def test_interactive_without_plotly_fails_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(SystemExit) as info:
        main([*TINY, "--interactive"])
    assert info.value.code == 2
    assert_one_line_error(capsys.readouterr().err, "pip install 'loss-landscape-anim[interactive]'")
    assert files_under(tmp_path) == []


def test_main_load_rerenders_the_same_gif(tmp_path):
    assert main([*TINY, "--output", "a.gif", "--checkpoints", "ck"]) == 0
    assert main([*TINY, "--output", "b.gif", "--checkpoints", "ck", "--load"]) == 0
    assert (tmp_path / "a.gif").read_bytes() == (tmp_path / "b.gif").read_bytes()


def test_entry_point_tiny_run(tmp_path):
    result = run_module([*TINY, "--output", "x.gif", "--method", "random"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    with Image.open(tmp_path / "x.gif") as im:
        assert im.n_frames == 5
    assert (tmp_path / "checkpoints" / "model.pt").is_file()


def test_entry_point_bad_value(tmp_path):
    result = run_module(["--epochs", "0"], tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "argument --epochs", "positive integer", "'0'")
    assert result.stdout == ""
    assert files_under(tmp_path) == []


def test_console_script_help(tmp_path):
    script = Path(sys.executable).with_name("loss-landscape-anim")
    if not script.exists():
        pytest.skip("the console script is not installed next to this interpreter")
    result = subprocess.run(
        [str(script), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: {PROG}")


# -- bad values: exit 2, one line, no traceback, nothing written -------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--epochs", "0"], ["argument --epochs", "expected a positive integer but got '0'"]),
        (["--epochs", "abc"], ["argument --epochs", "expected a positive integer but got 'abc'"]),
        (["--epochs", "2.5"], ["argument --epochs", "'2.5'"]),
        (["--optimizer", "foo"], ["argument --optimizer", "invalid choice: 'foo'", "'adam'"]),
        (["--output", "x.txt"], [".gif, .mp4, .html", "'x.txt'"]),
        (["--fps", "-1"], ["argument --fps", "expected a positive integer but got '-1'"]),
        (["--fps", "0"], ["argument --fps", "'0'"]),
        (["--margin", "-1"], ["argument --margin", "expected a finite number >= 0 but got '-1'"]),
        (["--margin", "nan"], ["argument --margin", "'nan'"]),
        (["--margin", "inf"], ["argument --margin", "'inf'"]),
        (["--margin", "x"], ["argument --margin", "expected a finite number >= 0 but got 'x'"]),
        (["--center", "adam"], ["--center needs --compare"]),
        (["--view", "flat"], ["argument --view", "invalid choice: 'flat'", "'surface'"]),
        (["--lr", "0"], ["argument --lr", "expected a positive finite number but got '0'"]),
        (["--lr", "inf"], ["argument --lr", "'inf'"]),
        (["--resolution", "-3"], ["argument --resolution", "'-3'"]),
        (["--method", "custom"], ["argument --method", "invalid choice: 'custom'"]),
        (["--compare", "adam,foo"], ["argument --compare", "'adam', 'sgd'", "'foo'"]),
        (["--compare", ","], ["argument --compare", "comma-separated list"]),
        (
            ["--device", "tpu"],
            ["argument --device", "Expected device to be 'cpu', 'cuda'", "'tpu'"],
        ),
        (["--seed", "one"], ["argument --seed", "expected an integer from -2**63", "'one'"]),
        (
            ["--seed", "99999999999999999999999"],
            ["argument --seed", "from -2**63 to 2**64 - 1 but got '99999999999999999999999'"],
        ),
        (["--resolution", "1"], ["argument --resolution", "an integer >= 2 but got '1'", "--help"]),
        (["--resolution", "100000"], ["resolution=100000 makes 1e+10 points", "GiB"]),
        (["--output", ".gif"], ["argument --output", "file name before its suffix", "'.gif'"]),
        (["--output", "adir.gif"], ["argument --output", "is a directory"]),
        (["--output", "afile/x.gif"], ["argument --output", "'afile' is not a folder"]),
        (["--fps", "60"], ["argument --fps", "at most 50 for a GIF but got 60"]),
        (["--compare", "adam,ADAM"], ["argument --compare", "'adam' more than once"]),
        (["--compare", "adam,sgd", "--load"], ["--load does not apply with --compare"]),
        (["--compare", "adam,sgd", "--optimizer", "sgd"], ["--optimizer does not apply"]),
        (["--compare", "adam,sgd", "--checkpoints", "c"], ["--checkpoints does not apply"]),
        (
            ["--compare", "adam,sgd", "--center", "rmsprop"],
            ["argument --center", "'adam', 'sgd' but got 'rmsprop'"],
        ),
        (["--examples", "10"], ["--examples applies to --data mnist only"]),
        (["--data-dir", "d"], ["--data-dir applies to --data mnist only"]),
        (["--data", "cifar"], ["argument --data", "invalid choice: 'cifar'"]),
        (["--bogus"], ["unrecognized arguments: --bogus"]),
        (["stray"], ["unrecognized arguments: stray"]),
        (["a\nb"], ["unrecognized arguments: a b"]),
    ],
)
def test_bad_values_exit_2_with_one_line(tmp_path, capsys, args, fragments):
    (tmp_path / "adir.gif").mkdir()
    (tmp_path / "afile").write_text("")
    before = files_under(tmp_path)
    with pytest.raises(SystemExit) as info:
        main([*TINY, *args])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err, *fragments)
    assert captured.out == ""
    assert files_under(tmp_path) == before


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"usage: {PROG}")
    for option in ("--epochs", "--optimizer", "--output", "--fps", "--compare", "--load"):
        assert option in captured.out
    assert captured.err == ""


def test_defaults():
    args = build_parser().parse_args([])
    assert (args.epochs, args.optimizer, args.method, args.seed) == (300, "adam", "pca", 0)
    assert (args.output, args.fps, args.frames, args.resolution) == ("sample.gif", 15, None, 100)
    assert (args.margin, args.data, args.compare, args.center) == (0.3, "spirals", None, None)
    assert not args.load and not args.no_progress and not args.verbose


def test_values_are_normalised():
    args = build_parser().parse_args(
        ["--optimizer", "SGD", "--method", "Random", "--compare", " Adam, sgd ,", "--seed", "-4"]
    )
    assert (args.optimizer, args.method, args.seed) == ("sgd", "random", -4)
    assert args.given == {"--optimizer"}
    assert args.compare == ["adam", "sgd"]


# -- fuzzing the parser --------------------------------------------------------------------------

OPTIONS = [
    action.option_strings[-1]
    for action in build_parser()._actions
    if action.option_strings and action.option_strings[-1] != "--help"
]
VALUES = [
    "0",
    "1",
    "-1",
    "3",
    "2.5",
    "nan",
    "inf",
    "-inf",
    "1e3",
    "adam",
    "SGD",
    "adam,sgd",
    ",",
    "",
]
ARGUMENT = st.one_of(
    st.sampled_from(OPTIONS),
    st.sampled_from(VALUES),
    st.builds(lambda o, v: f"{o}={v}", st.sampled_from(OPTIONS), st.sampled_from(VALUES)),
    st.text(max_size=12),
    st.text(st.sampled_from("-=,.0aZ \n\t"), max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(argv=st.lists(ARGUMENT, max_size=8))
def test_parser_fuzz_only_ever_exits(argv):
    """Any argument list either parses or exits (code 2 with a one-line message); never another
    exception."""
    parser = build_parser()
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            code = exc.code
        else:
            code = None
    if code is None:
        assert args.epochs >= 1 and args.fps >= 1 and args.resolution >= 2
        assert 0 <= args.margin < float("inf")
        assert args.optimizer in {"adam", "sgd", "adagrad", "rmsprop"}
        assert err.getvalue() == ""
    else:
        assert code == 2
        assert len(err.getvalue().splitlines()) == 1, err.getvalue()


# -- what a hard user broke ----------------------------------------------------------------------


def test_load_of_a_truncated_trajectory_exits_2_with_one_line(tmp_path, capsys):
    assert main([*TINY, "--output", "a.gif"]) == 0
    path = tmp_path / "checkpoints" / "model.trajectory.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = files_under(tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([*TINY, "--output", "b.gif", "--load"])
    assert info.value.code == 2
    assert_one_line_error(capsys.readouterr().err, "model.trajectory.npz", "is damaged")
    assert files_under(tmp_path) == before


@pytest.fixture
def compared(monkeypatch) -> list[dict]:
    """Calls of compare_optimizers, recorded instead of run."""
    import loss_landscape_anim.pipeline as pipeline

    calls: list[dict] = []
    monkeypatch.setattr(
        pipeline, "compare_optimizers", lambda *args, **kwargs: calls.append(kwargs)
    )
    return calls


def test_compare_honours_batch_size_and_matches_center_ignoring_case(compared):
    assert main([*TINY, "--compare", "Adam,SGD", "--center", "ADAM", "--batch-size", "7"]) == 0
    (kwargs,) = compared
    assert (kwargs["batch_size"], kwargs["center"]) == (7, "ADAM")


def test_warnings_are_one_line(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # as outside the suite, which makes warnings errors
        code = main([*TINY, "--optimizer", "sgd", "--lr", "1e12", "--output", "d.gif"])
    assert code == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{PROG}: warning: Training diverged to non-finite values")


# -- errors: bad input exits 2, running out of memory 1 with the levers, a bug its traceback ------


@pytest.fixture
def failing_run(monkeypatch):
    """Make the one-call API raise the given exception."""
    import loss_landscape_anim.pipeline as pipeline

    def make(exc: BaseException) -> None:
        def run(*args, **kwargs):
            raise exc

        monkeypatch.setattr(pipeline, "loss_landscape_anim", run)

    return make


@pytest.mark.parametrize(
    "exc",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB"),
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 10 GB"),
        MemoryError(),
    ],
)
def test_out_of_memory_is_one_line_that_names_the_levers(failing_run, capsys, exc):
    failing_run(exc)
    with pytest.raises(SystemExit) as info:
        main(TINY)
    assert info.value.code == 1
    assert_one_line_error(capsys.readouterr().err, "out of memory", "--resolution", "--examples")


@pytest.mark.parametrize(
    ("exc", "fragment"),
    [
        (ConvergenceError("eigsh did not converge"), "eigsh"),
        (DataError("labels out of range"), "labels out"),
        (FileNotFoundError("No such file: 'x.npz'"), "x.npz"),
        (ImportError("needs plotly: pip install plotly"), "pip install plotly"),
    ],
)
def test_the_package_errors_and_bad_input_exit_2(failing_run, capsys, exc, fragment):
    failing_run(exc)
    with pytest.raises(SystemExit) as info:
        main(TINY)
    assert info.value.code == 2
    assert_one_line_error(capsys.readouterr().err, fragment)


@pytest.mark.parametrize("exc", [TypeError("unsupported operand"), RuntimeError("shape mismatch")])
def test_a_bug_is_not_dressed_as_bad_input(failing_run, exc):
    """An internal error keeps its traceback (Python exits with code 1), not a usage line."""
    failing_run(exc)
    with pytest.raises(type(exc), match=str(exc)):
        main(TINY)


def test_line_and_interactive_work_with_compare(tmp_path):
    assert (
        main([*TINY, "--compare", "adam,sgd", "--line", "--interactive", "--output", "c.gif"]) == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c.gif",
        "c.interactive.html",
        "c.line.png",
    ]
