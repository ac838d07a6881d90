"""The public surface: ``__all__`` is exactly the public API, and importing the package stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import loss_landscape_anim

EXPECTED = {
    # the verbs of the pipeline
    "train",
    "project",
    "compute_loss_grid",
    "animate",
    "loss_landscape_anim",
    "compare_optimizers",
    # around the stages: recording, evaluating, analyses, drawing
    "TrajectoryRecorder",
    "record_training",
    "fill_losses",
    "LossEvaluator",
    "CurvatureEvaluator",
    "Preparation",
    "path_losses",
    "decision_regions",
    "Style",
    # curvature: Hessian eigenvalues, trace and spectral density, the convexity map, curvature
    # along the path, sharpness
    "hessian_eigenvalues",
    "hessian_trace",
    "hessian_density",
    "sharpness",
    "curvature_grid",
    "curvature_along_path",
    "plot_curvature",
    "plot_density",
    "plot_path_spectrum",
    # figures and the 1D line
    "plot_landscape",
    "interactive_surface",
    "plot_loss_line",
    "loss_along_line",
    # where results go next: TensorBoard, W&B, 3D surface files
    "log_tensorboard",
    "log_wandb",
    "export_surface",
    # mode connectivity: curves between solutions, permutation alignment, their pictures
    "connect",
    "loss_along_curve",
    "align",
    "plot_connectivity",
    "animate_connectivity",
    # their results
    "Trajectory",
    "Plane",
    "LossGrid",
    "LossLine",
    "Curve",
    "Animation",
    "Comparison",
    "PathLosses",
    "DecisionRegions",
    "HessianSpectrum",
    "HessianTrace",
    "HessianDensity",
    "Sharpness",
    "CurvatureGrid",
    "PathCurvature",
    # models and data
    "GenericModel",
    "MLP",
    "LeNet",
    "TinyGPT",
    "SpiralsDataModule",
    "MNISTDataModule",
    "SequenceDataModule",
    # errors and warnings
    "DataError",
    "ConvergenceError",
    "DivergenceWarning",
    "IncompatibleFileError",
    "UnsafeFileError",
}


def test_all_is_exactly_the_public_api():
    assert set(loss_landscape_anim.__all__) == EXPECTED
    assert len(loss_landscape_anim.__all__) == len(EXPECTED), "duplicates in __all__"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_public_name_is_importable(name):
    module = importlib.import_module("loss_landscape_anim")
    obj = getattr(module, name)
    assert obj is not None
    namespace: dict = {}
    exec(f"from loss_landscape_anim import {name}", namespace)
    assert namespace[name] is obj


def test_star_import_gives_exactly_all():
    namespace: dict = {}
    exec("from loss_landscape_anim import *", namespace)
    assert {k for k in namespace if not k.startswith("__")} == EXPECTED


def test_the_one_call_function_is_the_package_name():
    assert callable(loss_landscape_anim.loss_landscape_anim)
    assert (
        loss_landscape_anim.loss_landscape_anim.__module__
        == "loss_landscape_anim.pipeline.one_call"
    )


def test_import_does_not_import_matplotlib_or_optional_packages():
    code = (
        "import sys\n"
        "import loss_landscape_anim\n"
        "heavy = ('matplotlib', 'IPython', 'lightning', 'imageio_ffmpeg', 'scipy', 'plotly',\n"
        "         'h5py', 'meshio', 'pyvista', 'tensorboard', 'wandb', 'transformers', 'peft')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported at package import: {result.stdout.strip()}"
