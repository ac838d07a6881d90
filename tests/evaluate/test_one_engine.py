"""One evaluation engine: the loss and the curvature evaluators share one preparation and one
scheduler, so a convexity map resumes from a checkpoint like a loss grid, refuses a checkpoint of
another job, streams data and takes a precision; every analysis takes an evaluator already built;
a whole run prepares its model and data once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import loss_landscape_anim.evaluate.curvature as curvature_module
from hessian_oracle import F32_RTOL
from loss_landscape_anim import (
    CurvatureEvaluator,
    LossEvaluator,
    Preparation,
    compute_loss_grid,
    curvature_along_path,
    curvature_grid,
    decision_regions,
    fill_losses,
    hessian_eigenvalues,
    hessian_trace,
    loss_along_line,
    loss_landscape_anim,
    path_losses,
    project,
    train,
)
from loss_landscape_anim.errors import IncompatibleFileError
from loss_landscape_anim.evaluate import data as data_module
from loss_landscape_anim.evaluate import functional as functional_module
from loss_landscape_anim.models import MLP
from oracle import random_plane, spirals

JOB = {"resolution": 4, "progress": False, "method": "lanczos", "tol": 1e-6}
MAP = {**JOB, "chunk_size": 3}
MAKE_JOB = curvature_module.extremes_job


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = MLP(2, 3, hidden_dim=6)
    data = spirals(200)
    return model, data, random_plane(model)


class JobCounter:
    """Counts the chunks the curvature evaluator computes; raises after ``fail_after``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_after: int | None = None):
        self.calls = 0

        def counting(*args, **kwargs):
            job = MAKE_JOB(*args, **kwargs)

            def counted(sl):
                if fail_after is not None and self.calls == fail_after:
                    raise RuntimeError("node pre-empted")
                self.calls += 1
                return job(sl)

            return counted

        monkeypatch.setattr(curvature_module, "extremes_job", counting)


def test_a_killed_convexity_map_resumes_from_its_checkpoint(tmp_path, monkeypatch, setup):
    model, data, plane = setup
    expected = curvature_grid(model, data, plane, **MAP)  # 16 points: 6 chunks of 3
    path = tmp_path / "map.npz"
    failing = JobCounter(monkeypatch, fail_after=2)
    with pytest.raises(RuntimeError, match="node pre-empted"):
        curvature_grid(model, data, plane, checkpoint=path, **MAP)
    assert failing.calls == 2
    resumed = JobCounter(monkeypatch)
    grid = curvature_grid(model, data, plane, checkpoint=path, **MAP)
    assert resumed.calls == 6 - 2
    np.testing.assert_array_equal(grid.lambda_max, expected.lambda_max)
    np.testing.assert_array_equal(grid.lambda_min, expected.lambda_min)
    assert grid.n_products == expected.n_products
    again = JobCounter(monkeypatch)
    curvature_grid(model, data, plane, checkpoint=path, **MAP)
    assert again.calls == 0


def test_a_checkpoint_of_another_job_is_refused_naming_it(tmp_path, setup):
    model, data, plane = setup
    path = tmp_path / "map.npz"
    curvature_grid(model, data, plane, checkpoint=path, **MAP)
    with pytest.raises(IncompatibleFileError, match=r"map\.npz.*tol: 1e-06 in the checkpoint"):
        curvature_grid(model, data, plane, checkpoint=path, **{**MAP, "tol": 1e-3})
    loss_path = tmp_path / "grid.npz"
    compute_loss_grid(model, data, plane, resolution=4, progress=False, checkpoint=loss_path)
    with pytest.raises(IncompatibleFileError, match=r"grid\.npz.*what: 'loss grid'"):
        curvature_grid(model, data, plane, checkpoint=loss_path, **MAP)
    with pytest.raises(IncompatibleFileError, match=r"map\.npz.*what: 'curvature grid'"):
        compute_loss_grid(model, data, plane, resolution=4, progress=False, checkpoint=path)


def test_curvature_takes_streamed_data_and_a_precision(setup):
    model, data, plane = setup
    X, y = data
    dataset = torch.utils.data.TensorDataset(X, y)
    in_memory = curvature_grid(model, data, plane, **MAP)
    streamed = curvature_grid(model, dataset, plane, stream=True, memory_budget=2**16, **MAP)
    scale = np.abs(in_memory.lambda_max).max()
    np.testing.assert_allclose(streamed.lambda_max, in_memory.lambda_max, atol=4 * F32_RTOL * scale)
    np.testing.assert_allclose(streamed.lambda_min, in_memory.lambda_min, atol=4 * F32_RTOL * scale)
    reduced = curvature_grid(model, data, plane, precision="bf16", **MAP)
    assert reduced.precision == "bfloat16" and in_memory.precision == "float32"
    # bfloat16 keeps 8 bits: each product within a few 2**-8 of the float32 one.
    np.testing.assert_allclose(reduced.lambda_max, in_memory.lambda_max, atol=8 * 2**-8 * scale)


def test_every_analysis_takes_an_evaluator_already_built(setup):
    model, data, plane = setup
    trajectory = train(model, data, 3, seed=0, progress=False)
    path_plane = project(trajectory, "pca")
    evaluator = LossEvaluator(model, data)
    curvature = CurvatureEvaluator(evaluator)
    assert curvature.preparation is evaluator.preparation
    pairs = [
        (
            compute_loss_grid(model, data, plane, resolution=5, progress=False).loss,
            compute_loss_grid(plane=plane, resolution=5, progress=False, evaluator=evaluator).loss,
        ),
        (
            path_losses(model, data, trajectory, path_plane).true,
            path_losses(trajectory=trajectory, plane=path_plane, evaluator=evaluator).true,
        ),
        (
            loss_along_line(model, data, trajectory.params[0], trajectory.final_params).loss,
            loss_along_line(
                start=trajectory.params[0], end=trajectory.final_params, evaluator=evaluator
            ).loss,
        ),
        (
            fill_losses(trajectory, model, data, overwrite=True).loss,
            fill_losses(trajectory, overwrite=True, evaluator=evaluator).loss,
        ),
        (
            curvature_grid(model, data, plane, **JOB).lambda_max,
            curvature_grid(plane=plane, evaluator=curvature, **JOB).lambda_max,
        ),
        (
            curvature_along_path(model, data, trajectory, progress=False).lambda_max,
            curvature_along_path(
                trajectory=trajectory, evaluator=evaluator, progress=False
            ).lambda_max,
        ),
        (
            hessian_eigenvalues(model, data, k=2, seed=0).largest,
            hessian_eigenvalues(k=2, seed=0, evaluator=curvature).largest,
        ),
        (
            hessian_trace(model, data, n_samples=4, seed=0).estimate,
            hessian_trace(n_samples=4, seed=0, evaluator=evaluator).estimate,
        ),
        (
            decision_regions(model, data, trajectory, np.arange(2), resolution=8).classes,
            decision_regions(
                None, data, trajectory, np.arange(2), resolution=8, evaluator=evaluator
            ).classes,
        ),
    ]
    for built, shared in pairs:
        built, shared = np.asarray(built, dtype=float), np.asarray(shared, dtype=float)
        scale = np.abs(built).max()
        np.testing.assert_allclose(shared, built, atol=4 * F32_RTOL * scale, rtol=0)


def test_an_evaluator_comes_alone(setup):
    model, data, plane = setup
    evaluator = LossEvaluator(model, data)
    with pytest.raises(
        ValueError, match="either evaluator= or the model, data and evaluator options"
    ):
        compute_loss_grid(model, data, plane, evaluator=evaluator)
    with pytest.raises(ValueError, match="evaluator= with n_examples"):
        compute_loss_grid(plane=plane, evaluator=evaluator, n_examples=10)
    with pytest.raises(TypeError, match="Expected evaluator to be a LossEvaluator"):
        compute_loss_grid(plane=plane, evaluator="fast")
    with pytest.raises(TypeError, match="Expected plane to be a Plane but got NoneType"):
        compute_loss_grid(model, data)
    with pytest.raises(ValueError, match="Expected no data, n_examples with a prepared model"):
        LossEvaluator(evaluator.preparation, data, n_examples=3)


def test_a_whole_run_prepares_its_model_and_data_once(tmp_path, monkeypatch):
    copies, preparations = [], []
    make_model = functional_module.FunctionalModel.__init__
    prepare = data_module.EvalData.prepare.__func__

    def counting_model(self, *args, **kwargs):
        copies.append(1)
        make_model(self, *args, **kwargs)

    def counting_prepare(cls, *args, **kwargs):
        preparations.append(1)
        return prepare(cls, *args, **kwargs)

    monkeypatch.setattr(functional_module.FunctionalModel, "__init__", counting_model)
    monkeypatch.setattr(data_module.EvalData, "prepare", classmethod(counting_prepare))
    monkeypatch.chdir(tmp_path)
    loss_landscape_anim(
        n_epochs=4,
        seed=0,
        resolution=6,
        reduction_method="hessian",
        curvature=True,
        line_output="line.png",
        decision_regions=True,
        progress=False,
        output_filename="run.gif",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoints",
        "line.png",
        "run.curvature.png",
        "run.gif",
    ]
    assert len(copies) == 1
    assert len(preparations) == 1


def test_a_preparation_is_shared_not_copied(setup):
    model, data, _ = setup
    preparation = Preparation(model, data, n_examples=50)
    loss = LossEvaluator(preparation)
    curvature = CurvatureEvaluator(loss)
    assert loss.preparation is preparation is curvature.preparation
    assert loss.n_examples == curvature.n_examples == 50
    assert loss.model is curvature.model
