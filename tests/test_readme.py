"""The README's Python examples run as written, at reduced sizes (fewer epochs, grid points and
examples: the numbers users would change), in a fresh folder. The MNIST example reads small IDX
files written there in the real format, as the download would leave them."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"

#: Each example's sizes, reduced so the suite stays fast; every replacement must apply, so an
#: example that changes in the README fails here until this table follows.
SMALLER = {
    "LeNet": {
        "n_epochs=10": "n_epochs=1",
        "n_examples=3000": "n_examples=48",
        "resolution=40": "resolution=3",
        "n_examples=1000": "n_examples=16",
    },
    "train(model, data": {"n_epochs=300": "n_epochs=12", "resolution=100": "resolution=6"},
    "compare_optimizers": {"n_epochs=200": "n_epochs=6"},
    "TrajectoryRecorder(": {"range(100)": "range(12)", "record(100,": "record(12,"},
    "log_tensorboard(": {"n_epochs=30": "n_epochs=4", "resolution=30": "resolution=5"},
    "connect(model, spirals, adam": {
        "spirals, 300,": "spirals, 12,",
        "epochs=300": "epochs=12",
        "n_points=61": "n_points=5",
        "history_paths(plane))": "history_paths(plane), resolution=5)",
    },
    "TinyGPT(": {"n_epochs=100": "n_epochs=3", "resolution=60": "resolution=4"},
    "LossLandscapeCallback(every=1": {"max_steps=60": "max_steps=3"},
    "peft.LoraConfig": {"max_steps=40": "max_steps=3", "resolution=25": "resolution=3"},
}


def examples() -> list[str]:
    """The README's Python blocks, except those marked ``<!-- fragment ... -->`` (snippets that
    need the reader's own model and data)."""
    blocks = re.findall(
        r"(<!-- fragment[^>]*-->\n\s*)?```python\n(.*?)```", README.read_text(), re.S
    )
    return [code for marker, code in blocks if not marker]


def smaller(code: str) -> str:
    for key, replacements in SMALLER.items():
        if key in code:
            for old, new in replacements.items():
                assert old in code, f"the README example with {key!r} no longer has {old!r}"
                code = code.replace(old, new)
    return code + "\n"


def write_mnist(folder: Path, n: int = 64) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    (folder / "train-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()
    )
    (folder / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def test_the_readme_has_the_examples_this_test_knows() -> None:
    found = examples()
    assert len(found) >= 4
    for key in SMALLER:
        assert any(key in code for code in found), f"no README example contains {key!r}"


# peft 0.21 asks transformers 5 for a property it deprecated
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
@pytest.mark.parametrize("index", range(len(examples())))
def test_each_readme_example_runs(index: int, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_mnist(tmp_path)
    code = smaller(examples()[index])
    namespace: dict = {}
    exec(compile(code, f"README.md example {index}", "exec"), namespace)
    if "animate(" in code or "loss_landscape_anim(" in code:
        written = list(tmp_path.glob("*.gif"))
        assert written and all(p.stat().st_size > 0 for p in written)
    if "animate_connectivity(" in code:
        with Image.open(tmp_path / "connectivity.gif") as im:
            assert im.n_frames == namespace["curve"].n_rows
        assert namespace["along"].barrier <= namespace["line"].barrier
    if "compare_optimizers" in code:
        result = namespace["result"]
        assert set(result.trajectories) == {"adam", "sgd", "adagrad", "rmsprop"}
    if "TrajectoryRecorder(" in code:
        assert namespace["plane"].path_2d.shape == (13, 2)
    if "log_tensorboard(" in code:
        # every target of "Logging and export" wrote its files
        assert (tmp_path / "runs" / "spirals").is_dir() and (tmp_path / "wandb").is_dir()
        written = {"spirals_surface.h5", "spirals.vtp", "spirals.vts", "spirals.ply", "spirals.stl"}
        assert written <= {p.name for p in tmp_path.iterdir()}
        np.testing.assert_array_equal(namespace["same"].loss, namespace["grid"].loss)
        namespace["wandb"].teardown()  # a later wandb.init sets up afresh
    if "record_training" in code:
        assert len(namespace["trajectory"]) == 101
        assert np.isfinite(namespace["trajectory"].loss).all()  # the final row's, filled
