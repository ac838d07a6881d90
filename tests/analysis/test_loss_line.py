"""``loss_along_line`` and ``LossLine``: values against a direct computation, the barrier of a
convex model, the alphas, accuracy, save/load, errors; ``plot_loss_line``'s ``(fig, ax)``."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.nn.utils import parameters_to_vector

from loss_landscape_anim import (
    MLP,
    LossLine,
    SpiralsDataModule,
    loss_along_line,
    plot_loss_line,
    train,
)
from loss_landscape_anim.analysis.loss_line import line_alphas
from oracle import RTOL, loss_at, spirals
from tolerance import EPS32, sum_tolerance


def flat(model: nn.Module) -> np.ndarray:
    return parameters_to_vector(model.parameters()).detach().double().numpy()


def accuracy_at(model: nn.Module, weights: np.ndarray, X, y) -> float:
    copy_ = copy.deepcopy(model).eval()
    torch.nn.utils.vector_to_parameters(
        torch.as_tensor(weights, dtype=torch.float32), copy_.parameters()
    )
    with torch.no_grad():
        return float((copy_(X).argmax(1) == y).double().mean())


@pytest.fixture(scope="module")
def mlp_ends():
    """A small MLP's initial and trained weights on spirals."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MLP(2, 3, learning_rate=0.01)
    trajectory = train(model, SpiralsDataModule(), 30, seed=0, progress=False)
    return model, trajectory.params[0], trajectory.params[-1]


def test_the_line_matches_losses_computed_directly(mlp_ends):
    model, start, end = mlp_ends
    X, y = spirals()
    line = loss_along_line(model, (X, y), start, end, n_points=5)
    np.testing.assert_array_equal(line.alphas, [0.0, 0.25, 0.5, 0.75, 1.0])
    a, b = start.astype(np.float64), end.astype(np.float64)
    for k, alpha in ((0, 0.0), (2, 0.5), (4, 1.0)):
        weights = a + alpha * (b - a)
        assert line.loss[k] == pytest.approx(loss_at(model, weights, X, y), rel=RTOL)
        assert line.accuracy[k] == pytest.approx(accuracy_at(model, weights, X, y), abs=1e-12)
    assert line.start_loss == line.loss[0] and line.end_loss == line.loss[-1]
    assert line.end_loss < line.start_loss  # training lowered the loss
    assert line.n_examples == len(X)
    assert line.labels == ("start", "end")


def test_chunks_and_batches_give_the_same_line(mlp_ends):
    model, start, end = mlp_ends
    whole = loss_along_line(model, spirals(), start, end, n_points=7)
    chunked = loss_along_line(
        model, spirals(), start, end, n_points=7, chunk_size=2, memory_budget=4096
    )
    np.testing.assert_allclose(chunked.loss, whole.loss, rtol=RTOL)
    np.testing.assert_array_equal(chunked.accuracy, whole.accuracy)


def test_a_convex_model_has_no_barrier():
    """Softmax regression: cross-entropy of a linear model is convex in its weights, so the loss
    on any segment lies under the straight line between its ends."""
    X, y = spirals()
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = nn.Linear(2, 3)
        start = flat(model)
        end = (
            start + torch.randn(start.size, generator=torch.Generator().manual_seed(2)).numpy() * 3
        )
    line = loss_along_line(model, (X, y), start, end, n_points=21)
    # float32 losses: a mean over len(X) examples, each within a few eps of its value
    tolerance = sum_tolerance(float(np.max(line.loss)), len(X), EPS32)
    assert line.barrier <= tolerance
    assert np.all(line.loss - line.linear <= tolerance)
    # and the curve really bends: the line lies well under the chord somewhere
    assert np.min(line.loss - line.linear) < -100 * tolerance


def test_two_basins_of_a_network_show_a_barrier():
    """Two MLPs trained from different initial weights: the line between them rises above the
    straight line (Frankle et al. 2020)."""
    data = SpiralsDataModule()
    finals = []
    for seed in (0, 1):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = MLP(2, 3, learning_rate=0.02)
        finals.append(train(model, data, 150, seed=seed, progress=False).params[-1])
    line = loss_along_line(model, data, finals[0], finals[1], n_points=11)
    assert line.barrier > 0.05


def test_margin_extends_the_line_to_exactly_the_margin(mlp_ends):
    model, start, end = mlp_ends
    line = loss_along_line(model, spirals(100), start, end, n_points=11, margin=0.25)
    assert line.alphas[0] == -0.25 and line.alphas[-1] == 1.25  # not rounded up to 1.3
    np.testing.assert_allclose(np.diff(line.alphas[1:-1]), 0.1, rtol=1e-12)  # the same spacing
    np.testing.assert_allclose(np.diff(line.alphas)[[0, -1]], 0.05, rtol=1e-12)  # then the rest
    assert 0.0 in line.alphas and 1.0 in line.alphas
    assert len(line.loss) == len(line.alphas) == 17
    X, y = spirals(100)
    a, b = start.astype(np.float64), end.astype(np.float64)
    for k in (0, -1):  # the outermost points are evaluated where the alphas say
        weights = a + line.alphas[k] * (b - a)
        assert line.loss[k] == pytest.approx(loss_at(model, weights, X, y), rel=RTOL)


@pytest.mark.parametrize(
    ("n_points", "margin"),
    [(2, 0.0), (51, 0.0), (3, 0.5), (7, 1.0), (11, 0.25), (11, 0.04), (11, 0.15), (51, 0.333)],
)
def test_line_alphas_hold_0_and_1_and_both_ends_exactly(n_points, margin):
    alphas = line_alphas(n_points, margin)
    assert alphas[0] == -margin and alphas[-1] == 1 + margin
    assert np.count_nonzero((alphas >= 0) & (alphas <= 1)) == n_points
    assert 0.0 in alphas and 1.0 in alphas
    gaps = np.diff(alphas)
    assert np.all(gaps > 0)
    step = 1 / (n_points - 1)
    assert np.all(gaps <= 1.5 * step * (1 + 1e-12))
    if margin >= step / 2:  # no sliver of a gap at the outside
        assert min(gaps[0], gaps[-1]) >= step / 2 * (1 - 1e-12)


def test_a_margin_that_asks_for_too_many_points_is_refused_before_any_work(mlp_ends):
    model, start, end = mlp_ends
    with pytest.raises(
        ValueError,
        match=r"Expected n_points=51 and margin=1000000\.0 to give at most 100,000 points along "
        r"the line but they give 100,000,051",
    ):
        loss_along_line(model, "not data", start, end, margin=1e6)  # refused before the data
    with pytest.raises(ValueError, match="they give 200,001"):
        line_alphas(200_001, 0.0)


def test_large_lines_are_evaluated_in_blocks_of_weights(mlp_ends, monkeypatch):
    from loss_landscape_anim.analysis import loss_line

    model, start, end = mlp_ends
    whole = loss_along_line(model, spirals(100), start, end, n_points=9, margin=0.5)
    n_params = start.size
    monkeypatch.setattr(loss_line, "WEIGHT_BLOCK_BYTES", 3 * 8 * n_params)  # 3 points a block
    blocks = loss_along_line(model, spirals(100), start, end, n_points=9, margin=0.5)
    np.testing.assert_array_equal(blocks.alphas, whole.alphas)
    np.testing.assert_allclose(blocks.loss, whole.loss, rtol=RTOL)
    np.testing.assert_array_equal(blocks.accuracy, whole.accuracy)


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [
        (
            ("one",),
            ValueError,
            r"Expected labels to be two strings, the names of start and end, but got \('one',\)",
        ),
        (("a", "b", "c"), ValueError, r"two strings.* but got \('a', 'b', 'c'\)"),
        (("a", 2), ValueError, r"two strings.* but got \('a', 2\)"),
        ("ab", TypeError, r"Expected labels to be a pair of names \(start, end\) but got str 'ab'"),
        (None, TypeError, "a pair of names"),
    ],
)
def test_labels_must_be_a_pair_of_names(mlp_ends, labels, error, match):
    model, start, end = mlp_ends
    with pytest.raises(error, match=match):
        loss_along_line(model, spirals(10), start, end, labels=labels)


def test_a_list_of_two_labels_is_a_pair(mlp_ends):
    model, start, end = mlp_ends
    line = loss_along_line(model, spirals(10), start, end, n_points=2, labels=["init", "final"])
    assert line.labels == ("init", "final")
    with pytest.raises(
        ValueError, match=r"Expected labels to be a pair \(start, end\) but got \('a',\)"
    ):
        LossLine(line.alphas, line.loss, line.accuracy, ("a",))


def test_the_barrier_is_never_below_0():
    """A max over alpha in [0, 1] whose ends are 0 by construction, whatever the curve."""
    alphas = np.linspace(0, 1, 5)
    below = LossLine(alphas, np.array([1.0, 0.2, 0.1, 0.2, 0.5]), np.full(5, np.nan))
    assert below.barrier == 0.0
    above = LossLine(alphas, np.array([1.0, 2.0, 0.1, 0.2, 0.5]), np.full(5, np.nan))
    assert above.barrier == pytest.approx(2.0 - (0.75 * 1.0 + 0.25 * 0.5))


def test_accuracy_is_nan_for_a_regression_model():
    X = torch.linspace(-1, 1, 20)[:, None]
    model = nn.Linear(1, 1)
    model.loss_fn = nn.functional.mse_loss  # type: ignore[assignment]
    start = flat(model)
    line = loss_along_line(model, (X, 2 * X), start, start + 1.0, n_points=3)
    assert np.isnan(line.accuracy).all()
    assert np.isfinite(line.loss).all()


def test_ends_can_be_models(mlp_ends):
    model, _, end = mlp_ends
    other = copy.deepcopy(model)
    torch.nn.utils.vector_to_parameters(
        torch.as_tensor(end, dtype=torch.float32), other.parameters()
    )
    from_models = loss_along_line(model, spirals(100), model, other, n_points=3)
    from_vectors = loss_along_line(model, spirals(100), flat(model), end, n_points=3)
    np.testing.assert_array_equal(from_models.loss, from_vectors.loss)


def test_save_and_load(mlp_ends, tmp_path):
    model, start, end = mlp_ends
    line = loss_along_line(
        model, spirals(100), start, end, n_points=5, margin=0.5, labels=("initial", "final")
    )
    loaded = LossLine.load(line.save(tmp_path / "line.npz"))
    for name in ("alphas", "loss", "accuracy"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(line, name))
    assert loaded.labels == ("initial", "final")
    assert loaded.n_examples == 100
    assert loaded.barrier == line.barrier


def test_argument_errors(mlp_ends):
    model, start, end = mlp_ends
    data = spirals(10)
    with pytest.raises(ValueError, match="Expected n_points to be at least 2 but got 1"):
        loss_along_line(model, data, start, end, n_points=1)
    with pytest.raises(
        ValueError, match=r"Expected margin to be a finite number >= 0 but got -0\.1"
    ):
        loss_along_line(model, data, start, end, margin=-0.1)
    with pytest.raises(ValueError, match=rf"Expected end to have {start.size} entries .* got 3"):
        loss_along_line(model, data, start, np.zeros(3))
    with pytest.raises(ValueError, match="Expected start to be finite but it has NaN"):
        loss_along_line(model, data, np.full(start.size, np.nan), end)
    with pytest.raises(TypeError, match="Expected start to be a flat weight vector or a model"):
        loss_along_line(model, data, "abc", end)
    with pytest.raises(ValueError, match="Expected alphas to include 0"):
        LossLine(np.array([0.5, 1.0]), np.ones(2), np.ones(2))


# -- plot_loss_line ------------------------------------------------------------------------------


def test_plot_loss_line_draws_into_the_callers_axes(mlp_ends):
    model, start, end = mlp_ends
    line = loss_along_line(model, spirals(), start, end, n_points=9, margin=0.25)
    fig = Figure()
    ax = fig.add_subplot()
    got_fig, got_ax = plot_loss_line(line, ax=ax)
    assert got_fig is fig and got_ax is ax
    curve = ax.get_lines()[0]
    np.testing.assert_array_equal(curve.get_xdata(), line.alphas)
    np.testing.assert_array_equal(curve.get_ydata(), line.loss)
    assert ax.get_ylabel() == "loss"
    assert any(t.get_text().startswith("barrier") for t in ax.get_legend().get_texts())
    assert len(fig.axes) == 2  # the loss axes and the accuracy twin


def test_plot_loss_line_makes_a_figure_without_pyplot(mlp_ends):
    import matplotlib.pyplot as plt

    model, start, end = mlp_ends
    line = loss_along_line(model, spirals(100), start, end, n_points=3)
    before = plt.get_fignums()
    fig, ax = plot_loss_line(line, accuracy=False)
    assert isinstance(fig, Figure) and ax.figure is fig and len(fig.axes) == 1
    assert plt.get_fignums() == before
    with pytest.raises(TypeError, match="Expected line to be a LossLine but got dict"):
        plot_loss_line({})
