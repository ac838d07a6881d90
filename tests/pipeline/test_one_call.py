"""The one-call ``loss_landscape_anim(...)``: files written, returned data, reproducibility,
re-rendering from saved files, and argument checks that fail before anything is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import loss_landscape_anim.pipeline.stages as stages_module
from loss_landscape_anim import (
    MLP,
    Animation,
    DataError,
    GenericModel,
    IncompatibleFileError,
    SpiralsDataModule,
    Trajectory,
    loss_landscape_anim,
    train,
)
from loss_landscape_anim.data.modules import make_spirals
from loss_landscape_anim.params.weights import load_weights

EPOCHS = 15
N_PARAMS = (2 * 50 + 50) + (50 * 3 + 3)  # the default MLP on spirals: 2 -> 50 -> 3


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Anything written to the working directory lands in the test's own folder."""
    monkeypatch.chdir(tmp_path)


def run(tmp: Path, name: str = "a.gif", **kwargs):
    options = dict(
        n_epochs=EPOCHS,
        seed=0,
        resolution=10,
        progress=False,
        output_filename=tmp / name,
        model_dirpath=tmp / "ckpt",
    )
    options.update(kwargs)
    return loss_landscape_anim(**options)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One default run (seed 0): its folder holds a.gif and ckpt/."""
    folder = tmp_path_factory.mktemp("reference")
    animation = run(folder)
    assert isinstance(animation, Animation)
    return folder


# -- files and returned data -------------------------------------------------------------------


def test_writes_gif_weights_and_trajectory(reference):
    assert files_under(reference) == [
        "a.gif",
        "ckpt",
        "ckpt/model.pt",
        "ckpt/model.trajectory.npz",
    ]
    with Image.open(reference / "a.gif") as im:
        assert im.format == "GIF"
        assert im.size == (900, 600)
        assert im.n_frames == EPOCHS + 1

    trajectory = Trajectory.load(reference / "ckpt" / "model.trajectory.npz")
    assert len(trajectory) == EPOCHS + 1
    assert trajectory.n_params == N_PARAMS
    np.testing.assert_array_equal(trajectory.steps, np.arange(EPOCHS + 1))

    weights = load_weights(MLP(2, 3), reference / "ckpt" / "model.pt")
    final = torch.cat([p.detach().ravel() for p in weights.parameters()]).numpy()
    np.testing.assert_array_equal(final, trajectory.final_params)


def test_returns_the_animation(tmp_path):
    animation = run(tmp_path, sampling=True, n_frames=3, giffps=5)
    assert isinstance(animation, Animation)
    assert animation.path == tmp_path / "a.gif"
    assert (animation.n_frames, animation.fps, animation.size) == (3, 5, (900, 600))
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == 3


def test_return_data(tmp_path, reference):
    optim_path, loss_steps, accu_steps = run(
        tmp_path, seed=1, return_data=True, sampling=True, n_frames=2
    )
    assert len(optim_path) == len(loss_steps) == len(accu_steps) == EPOCHS + 1
    for row in optim_path:
        assert isinstance(row, np.ndarray)
        assert row.shape == (N_PARAMS,)
    assert all(isinstance(v, float) and np.isfinite(v) for v in loss_steps)
    assert all(0.0 <= v <= 1.0 for v in accu_steps)
    # the same as the trajectory saved beside the weights
    saved = Trajectory.load(tmp_path / "ckpt" / "model.trajectory.npz")
    np.testing.assert_array_equal(np.stack(optim_path), saved.params)
    np.testing.assert_array_equal(loss_steps, saved.loss)
    # another seed, other initial weights than the reference run's
    seed0 = Trajectory.load(reference / "ckpt" / "model.trajectory.npz")
    assert not np.array_equal(optim_path[0], seed0.params[0])
    assert (tmp_path / "a.gif").is_file()


# -- reproducibility and re-rendering ----------------------------------------------------------


def test_same_seed_gives_identical_gif(tmp_path, reference):
    run(tmp_path)
    assert (tmp_path / "a.gif").read_bytes() == (reference / "a.gif").read_bytes()
    for name in ("model.trajectory.npz", "model.pt"):
        assert (tmp_path / "ckpt" / name).is_file()
    again = Trajectory.load(tmp_path / "ckpt" / "model.trajectory.npz")
    first = Trajectory.load(reference / "ckpt" / "model.trajectory.npz")
    np.testing.assert_array_equal(again.params, first.params)
    np.testing.assert_array_equal(again.loss, first.loss)


def test_load_model_rerenders_without_training(tmp_path, reference, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("train() called with load_model=True")

    monkeypatch.setattr("loss_landscape_anim.pipeline.one_call.train", no_training)
    before = files_under(reference / "ckpt")
    animation = loss_landscape_anim(
        load_model=True,
        seed=0,
        resolution=10,
        progress=False,
        output_filename=tmp_path / "b.gif",
        model_dirpath=reference / "ckpt",
    )
    assert isinstance(animation, Animation)
    assert (tmp_path / "b.gif").read_bytes() == (reference / "a.gif").read_bytes()
    assert files_under(reference / "ckpt") == before
    assert files_under(tmp_path) == ["b.gif"]


def test_load_model_without_saved_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No saved weights at '.*model\.pt'"):
        run(tmp_path, load_model=True, model_dirpath=tmp_path / "nothing")
    assert files_under(tmp_path) == []


def test_load_model_without_saved_trajectory(tmp_path, reference):
    (tmp_path / "ckpt").mkdir()
    shutil.copy(reference / "ckpt" / "model.pt", tmp_path / "ckpt" / "model.pt")
    with pytest.raises(FileNotFoundError, match=r"'.*model\.trajectory\.npz' does not exist"):
        run(tmp_path, load_model=True)
    assert files_under(tmp_path) == ["ckpt", "ckpt/model.pt"]


def test_load_model_with_weights_of_another_architecture(tmp_path, reference):
    with pytest.raises(IncompatibleFileError) as info:
        run(
            tmp_path,
            load_model=True,
            model=MLP(2, 3, hidden_dim=8),
            model_dirpath=reference / "ckpt",
        )
    message = str(info.value)
    assert "model.pt" in message
    assert "the file has 4 tensors / 303 values [layers.0.weight[50, 2]" in message
    assert "the model expects 4 tensors / 51 values [layers.0.weight[8, 2]" in message
    assert isinstance(info.value, ValueError)
    assert files_under(tmp_path) == []


def test_load_model_with_trajectory_of_another_architecture(tmp_path, reference):
    (tmp_path / "ckpt").mkdir()
    shutil.copy(reference / "ckpt" / "model.pt", tmp_path / "ckpt" / "model.pt")
    small = train(MLP(2, 3, hidden_dim=8), SpiralsDataModule(), 1, seed=0, progress=False)
    small.save(tmp_path / "ckpt" / "model.trajectory.npz")
    with pytest.raises(
        IncompatibleFileError,
        match=r"belongs to another model: Expected a model with 51 parameters .* but got 303",
    ):
        run(tmp_path, load_model=True)
    assert not (tmp_path / "a.gif").exists()


# -- reduction methods ---------------------------------------------------------------------------


def capture_plane(monkeypatch) -> list:
    """Record the plane that reaches ``animate`` (and still render)."""
    seen: list = []
    real_animate = stages_module.animate

    def recording_animate(trajectory, plane, grid, *args, **kwargs):
        seen.append(plane)
        return real_animate(trajectory, plane, grid, *args, **kwargs)

    monkeypatch.setattr(stages_module, "animate", recording_animate)
    return seen


def test_random_directions_are_labelled_as_directions(tmp_path, monkeypatch):
    seen = capture_plane(monkeypatch)
    run(tmp_path, reduction_method="random", sampling=True, n_frames=2)
    (plane,) = seen
    assert plane.method == "random"
    assert plane.axis_labels() == ("direction 0", "direction 1")
    assert plane.directions.shape == (2, N_PARAMS)
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == 2


def test_pca_directions_are_labelled_with_explained_variance(tmp_path, monkeypatch):
    seen = capture_plane(monkeypatch)
    run(tmp_path, reduction_method="pca", sampling=True, n_frames=2, show_path_losses=False)
    (plane,) = seen
    labels = plane.axis_labels()
    assert labels[0].startswith("principal component 0, ") and labels[0].endswith("%")
    assert labels[1].startswith("principal component 1, ")


def test_custom_directions(tmp_path, monkeypatch):
    seen = capture_plane(monkeypatch)
    u = np.zeros(N_PARAMS)
    v = np.zeros(N_PARAMS)
    u[0], v[1] = 1.0, 1.0
    run(
        tmp_path,
        reduction_method="custom",
        custom_directions=(u, torch.from_numpy(v)),
        sampling=True,
        n_frames=2,
    )
    (plane,) = seen
    np.testing.assert_array_equal(plane.directions, np.stack([u, v]))
    assert (tmp_path / "a.gif").is_file()


# -- argument checks: raised before any file is written ----------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (
            {"reduction_method": "custom", "custom_directions": (np.ones(10), np.ones(10))},
            ValueError,
            r"custom_directions\[0\] to have 303 entries \(the model's parameter count\) but got 10",
        ),
        (
            {"reduction_method": "custom"},
            ValueError,
            r"needs custom_directions=\(u, v\): two vectors of length 303",
        ),
        (
            {"optimizer": "lbfgs"},
            ValueError,
            r"optimizer to be one of 'adam', 'sgd', 'adagrad', 'rmsprop'.* but got 'lbfgs'",
        ),
        (
            {"reduction_method": "tsne"},
            ValueError,
            r"reduction_method to be one of 'pca', 'random', 'filter', 'hessian', 'custom' but got 'tsne'",
        ),
        ({"n_epochs": 0}, ValueError, "Expected n_epochs to be a positive integer but got 0"),
        ({"n_epochs": None}, ValueError, "Expected n_epochs to be a positive integer"),
        ({"giffps": 0}, ValueError, "Expected giffps to be a positive integer but got 0"),
        ({"n_frames": -3}, ValueError, "Expected n_frames to be a positive integer but got -3"),
        ({"output_filename": "out.txt"}, ValueError, r"\.gif, \.mp4, \.html but got 'out\.txt'"),
        ({"gpus": -1}, ValueError, "Expected gpus to be a non-negative integer but got -1"),
        ({"device": "tpu"}, ValueError, "Expected device to be 'cpu', 'cuda'"),
        ({"model": "resnet"}, TypeError, "Expected model to be a torch.nn.Module but got str"),
        (
            {"datamodule": (np.zeros((4, 2)), np.zeros(4))},
            ValueError,
            "The default MLP needs the data's input size",
        ),
    ],
)
def test_bad_arguments_fail_before_any_file(tmp_path, options, error, match):
    with pytest.raises(error, match=match):
        run(tmp_path, **options)
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"margin": -1.0}, ValueError, "Expected margin to be a finite number >= 0 but got -1"),
        ({"margin": float("inf")}, ValueError, "Expected margin to be a finite number >= 0"),
        ({"resolution": 1}, ValueError, "Expected resolution to be an integer >= 2 but got 1"),
        ({"n_examples": 0}, ValueError, "Expected n_examples to be a positive integer but got 0"),
        ({"style": "dark"}, TypeError, "style"),
    ],
)
def test_grid_and_style_arguments_fail_before_any_file(tmp_path, options, error, match):
    with pytest.raises(error, match=match):
        run(tmp_path, n_epochs=2, **options)
    assert files_under(tmp_path) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_gpus_without_cuda(tmp_path):
    with pytest.raises(ValueError, match=r"gpus=1\) but CUDA is not available"):
        run(tmp_path, gpus=1)
    assert files_under(tmp_path) == []


# -- showing instead of writing ------------------------------------------------------------------


def test_output_to_file_false_shows_and_writes_no_animation(tmp_path, monkeypatch):
    shown: list[Animation] = []
    monkeypatch.setattr(Animation, "show", lambda self: shown.append(self))
    result = run(tmp_path, output_to_file=False, sampling=True, n_frames=3)
    assert result is None
    (animation,) = shown
    assert animation.path is None
    assert animation.format == "gif"
    assert animation.n_frames == 3
    assert animation.data is not None and animation.data.startswith(b"GIF89a")
    assert not any(p.suffix in {".gif", ".mp4", ".html"} for p in tmp_path.rglob("*"))


# -- a user's model and data -------------------------------------------------------------------


class TinyNet(GenericModel):
    """2 -> 8 -> 3 with tanh, trained with SGD."""

    def __init__(self) -> None:
        super().__init__(optimizer="sgd", learning_rate=0.1, num_classes=3)
        self.hidden = nn.Linear(2, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(x)))


@pytest.fixture
def user_model() -> TinyNet:
    with torch.random.fork_rng():
        torch.manual_seed(1234)
        return TinyNet()


def flat(model: nn.Module) -> np.ndarray:
    return torch.cat([p.detach().ravel() for p in model.parameters()]).numpy().copy()


def test_user_model_and_xy_pair(tmp_path, user_model):
    X, y = make_spirals(40, 3, seed=5)
    initial = flat(user_model)
    for seed in (0, 7):
        optim_path, loss_steps, _ = run(
            tmp_path,
            n_epochs=4,
            model=user_model,
            datamodule=(X.numpy(), y.numpy()),
            seed=seed,
            return_data=True,
            decision_regions=True,
        )
        assert len(optim_path) == len(loss_steps) == 5
        assert optim_path[0].shape == (8 * 2 + 8 + 3 * 8 + 3,)
        # the seed orders the data; it never re-initialises the user's model
        np.testing.assert_array_equal(optim_path[0], initial)
        assert not np.array_equal(optim_path[-1], initial)
        with Image.open(tmp_path / "a.gif") as im:
            assert im.n_frames == 5
    # the caller's model is not trained in place
    np.testing.assert_array_equal(flat(user_model), initial)
    assert user_model.training


def test_user_model_weights_reload(tmp_path, user_model, monkeypatch):
    X, y = make_spirals(30, 3, seed=5)
    data = (X, y)
    run(tmp_path, n_epochs=3, model=user_model, datamodule=data, sampling=True, n_frames=2)
    first = (tmp_path / "a.gif").read_bytes()
    monkeypatch.setattr(
        "loss_landscape_anim.pipeline.one_call.train", None
    )  # calling it would fail
    run(
        tmp_path,
        name="b.gif",
        load_model=True,
        model=user_model,
        datamodule=data,
        sampling=True,
        n_frames=2,
    )
    assert (tmp_path / "b.gif").read_bytes() == first


# -- what a hard user broke: a failing call touches no file ------------------------------------


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def earlier_run(tmp_path, reference) -> dict:
    """The reference run's checkpoints copied into this test's folder; their snapshot."""
    shutil.copytree(reference / "ckpt", tmp_path / "ckpt")
    return snapshot(tmp_path)


def no_training(*args, **kwargs):
    raise AssertionError("trained before every argument was checked")


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (
            {"custom_directions": (np.ones(N_PARAMS), np.arange(N_PARAMS, dtype=float))},
            ValueError,
            "custom_directions were given but reduction_method is 'pca'",
        ),
        (
            {"datamodule": (torch.randn(30, 3), torch.randint(0, 3, (30,))), "model": MLP(3, 3)},
            ValueError,
            r"decision_regions=True needs 2-D inputs .* have shape \(3,\) per example",
        ),
        (
            {"datamodule": (torch.randn(30, 2), torch.randn(30)), "model": MLP(2, 3)},
            ValueError,
            "decision_regions=True needs class labels but the data's targets are floating",
        ),
        ({"output_filename": "DIR"}, ValueError, "output_filename to be a file path but .* is a"),
        ({"output_filename": ".gif"}, ValueError, "output_filename to be a file name before"),
        ({"giffps": 200}, ValueError, "Expected giffps to be at most 50 for a GIF but got 200"),
        ({"seed": 2**70}, ValueError, r"Expected seed to be None or an integer from -2\*\*63"),
        ({"model_dirpath": "FILE"}, ValueError, "Expected model_dirpath to be a folder but"),
        ({"model_filename": ""}, ValueError, "Expected model_filename to be a file path"),
        (
            {"datamodule": SpiralsDataModule(), "batch_size": 7},
            ValueError,
            "batch_size=7 applies to the default spirals data only",
        ),
        ({"decision_regions": "yes"}, TypeError, "Expected decision_regions to be True, False"),
    ],
)
def test_checks_after_an_earlier_run_touch_no_file(
    tmp_path, earlier_run, monkeypatch, options, error, match
):
    monkeypatch.setattr("loss_landscape_anim.pipeline.one_call.train", no_training)
    (tmp_path / "DIR.gif").mkdir()
    (tmp_path / "FILE").write_text("")
    before = snapshot(tmp_path)
    arguments = {"decision_regions": True, **options}
    for name, value in arguments.items():
        if value in ("DIR", "FILE"):
            arguments[name] = tmp_path / ("DIR.gif" if value == "DIR" else value)
    with pytest.raises(error, match=match):
        run(tmp_path, **arguments)
    assert snapshot(tmp_path) == before
    assert files_under(tmp_path / "DIR.gif") == []


def test_a_failure_after_training_keeps_the_earlier_checkpoints(tmp_path, earlier_run, monkeypatch):
    def broken_render(*args, **kwargs):
        raise RuntimeError("rendering failed")

    monkeypatch.setattr("loss_landscape_anim.pipeline.one_call.render", broken_render)
    with pytest.raises(RuntimeError, match="rendering failed"):
        run(tmp_path, seed=1)
    assert snapshot(tmp_path) == earlier_run


def test_non_finite_data_are_named_and_nothing_is_written(tmp_path):
    X, y = make_spirals(40, 3, seed=5)
    X[17, 0] = float("nan")
    with pytest.raises(DataError, match=r"The inputs hold 1 non-finite value .* example 17"):
        run(tmp_path, model=MLP(2, 3), datamodule=(X, y))
    assert files_under(tmp_path) == []


def test_numpy_integers_are_accepted_everywhere(tmp_path):
    animation = run(
        tmp_path,
        n_epochs=np.int64(2),
        resolution=np.int64(4),
        giffps=np.int32(5),
        sampling=True,
        n_frames=np.int64(2),
        n_examples=np.int64(50),
        record_every=np.int64(1),
        seed=np.int64(0),
        gpus=np.int64(0),
        margin=np.float32(0.2),
    )
    assert (animation.n_frames, animation.fps) == (2, 5)
    assert type(animation.fps) is int


def test_a_float64_model_keeps_its_precision_end_to_end(tmp_path):
    torch.manual_seed(0)
    model = MLP(2, 3, hidden_dim=6, learning_rate=0.05).double()
    X, y = make_spirals(30, 3, seed=5)
    run(tmp_path, n_epochs=3, model=model, datamodule=(X.double(), y.int()))
    state = torch.load(tmp_path / "ckpt" / "model.pt", weights_only=True)
    trajectory = Trajectory.load(tmp_path / "ckpt" / "model.trajectory.npz")
    assert trajectory.dtype == np.float64
    for name, value in state.items():
        assert value.dtype == torch.float64, name
        assert not torch.equal(value, value.float().double()), f"{name} was rounded to float32"
    final = torch.cat([state[n].ravel() for n in trajectory.layout.names]).numpy()
    np.testing.assert_array_equal(final, trajectory.final_params)
