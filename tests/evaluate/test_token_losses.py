"""Dict batches and token losses, against a direct computation: the loss of a point is the mean
cross-entropy over every label token of the evaluation data (batches of different token counts,
padded labels ignored, labels shifted by one for a causal language model given its inputs by
name), for the loss, its accuracy and its Hessian alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from loss_landscape_anim import CurvatureEvaluator, LossEvaluator, compute_loss_grid
from loss_landscape_anim.errors import DataError
from loss_landscape_anim.losses import Loss
from loss_landscape_anim.results import Plane
from token_oracle import (
    ItemDataset,
    PrefixLM,
    direct_hessian,
    direct_loss,
    load,
    mean_of_batch_means,
    token_batches,
    token_sums,
)
from tolerance import EPS32, EPS64, sum_tolerance

#: Batches of 3 x 7, 2 x 12 and 4 x 5 tokens: 3 x 6 - 2, 2 x 11 - 2 and 4 x 4 - 2 label tokens.
SHAPES = [(3, 7), (2, 12), (4, 5)]


def loader(batches: list[dict]) -> DataLoader:
    return DataLoader(batches, batch_size=None)


def near(model: torch.nn.Module, n: int, scale: float = 0.5, seed: int = 0) -> np.ndarray:
    w = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double().numpy()
    return w + scale * np.random.default_rng(seed).standard_normal((n, w.size))


def tolerance(value: float, tokens: int, eps: float) -> float:
    """A token mean: a sum of ``tokens`` terms of the size of the mean, over their count."""
    return sum_tolerance(abs(value) * tokens, tokens, eps) / tokens + 16 * eps * abs(value)


@pytest.mark.parametrize("output", ["tensor", "dict", "tuple"])
def test_the_loss_is_the_mean_over_every_label_token(output) -> None:
    model = PrefixLM(output=output)
    batches = token_batches(SHAPES)
    evaluator = LossEvaluator(model, loader(batches))
    # the shift is made once on the data: position t then scores label t + 1 of the sequence
    assert evaluator.model.loss_fn == Loss(evaluator.model.loss_fn.fn, tokens=True, shift=False)
    assert evaluator.data.trim and evaluator.data.X["input_ids"].shape == (9, 11)
    assert evaluator.data.total_weight == 16 + 20 + 14
    W = near(model, 3)
    losses = evaluator.weight_losses(W)
    for k in range(3):
        expected, _ = direct_loss(model, W[k], batches)
        assert losses[k] == pytest.approx(expected, abs=tolerance(expected, 50, EPS32))
        # weighting each batch alike would be another number: the test tells them apart
        assert abs(mean_of_batch_means(model, W[k], batches) - expected) > 100 * tolerance(
            expected, 50, EPS32
        )


def test_evaluation_batches_of_any_size_weight_by_their_tokens() -> None:
    model = PrefixLM().double()
    batches = token_batches([(50, 7), (40, 12), (60, 5)])
    tokens = 50 * 6 + 40 * 11 + 60 * 4 - 3 * 2
    whole = LossEvaluator(model, loader(batches), memory_budget=2**30)
    # a small budget re-cuts the 150 sequences (padded to 12) into batches of 64, 64 and 22
    cut = LossEvaluator(model, loader(batches), memory_budget=2 * whole.per_example)
    assert whole.data.n_batches == 1 and cut.data.n_batches == 3
    # the first example of each source batch has 2 labels ignored
    expected_weights = [50 * 6 - 2 + 14 * 11 - 2, 26 * 11 + 38 * 4 - 2, 22 * 4]
    assert [cut.data.weight(b) for b in range(3)] == expected_weights
    assert cut.data.total_weight == tokens
    # each batch is cut after its last label: the last holds sequences of 5 tokens only
    assert cut.data.batch(2)[0]["input_ids"].shape == (22, 4)
    assert cut.data.batch(0)[0]["input_ids"].shape == (64, 11)
    W = near(model, 2)
    expected = [direct_loss(model, w, batches)[0] for w in W]
    for evaluator in (whole, cut):
        got = evaluator.weight_losses(W)
        np.testing.assert_allclose(
            got, expected, rtol=0, atol=tolerance(max(expected), tokens, EPS64)
        )


def test_accuracy_is_the_share_of_right_label_tokens() -> None:
    model = PrefixLM()
    batches = token_batches(SHAPES, seed=3)
    W = near(model, 2, scale=2.0)
    got = LossEvaluator(model, loader(batches)).weight_accuracies(W)
    expected = [direct_loss(model, w, batches)[1] for w in W]
    np.testing.assert_allclose(got, expected, rtol=0, atol=4 * EPS64)  # right tokens / 50
    assert min(expected) > 0 and max(expected) < 1


def test_the_grid_of_a_token_model_matches_the_direct_loss_point_by_point() -> None:
    model = PrefixLM()
    batches = token_batches(SHAPES)
    origin = near(model, 1, scale=0.0)[0]
    D = np.random.default_rng(2).standard_normal((2, origin.size))
    plane = Plane(origin, D, np.array([[-0.4, 0.3], [0.0, 0.0]]), np.zeros(2))
    grid = compute_loss_grid(model, loader(batches), plane, resolution=3, progress=False)
    for i, yv in enumerate(grid.ys):
        for j, xv in enumerate(grid.xs):
            expected, _ = direct_loss(model, plane.point(xv, yv), batches)
            assert grid.loss[i, j] == pytest.approx(expected, abs=tolerance(expected, 50, EPS32))


def test_the_hessian_weights_each_batch_by_its_label_tokens() -> None:
    model = PrefixLM(vocab=5, width=3).double()
    batches = token_batches(SHAPES, vocab=5)
    evaluator = CurvatureEvaluator(model, loader(batches))
    cut = CurvatureEvaluator(model, loader(batches), memory_budget=2 * evaluator.per_example)
    assert cut.data.n_batches > 1
    W = near(model, 2, scale=0.3)
    for curvature in (evaluator, cut):
        H = curvature.dense_hessians(torch.as_tensor(W)).numpy()
        for k in range(2):
            reference = direct_hessian(model, W[k], batches)
            scale = np.abs(reference).max()
            np.testing.assert_allclose(H[k], reference, rtol=0, atol=1e3 * EPS64 * scale)


def test_streamed_token_data_give_the_same_losses() -> None:
    model = PrefixLM().double()
    batches = token_batches([(50, 6), (60, 6), (40, 6)])  # one length: items stack
    dataset = ItemDataset(batches)
    W = near(model, 2)
    expected = [direct_loss(model, w, batches)[0] for w in W]
    held = LossEvaluator(model, dataset).weight_losses(W)
    streamed = LossEvaluator(model, dataset, stream=True, memory_budget=1)
    # batches of 64, 64 and 22 sequences (the least a batch holds for one point at a time)
    assert streamed.data.n_batches == 3 and streamed.data.total_weight == 150 * 5 - 3 * 2
    np.testing.assert_allclose(held, expected, atol=tolerance(max(expected), 744, EPS64))
    np.testing.assert_allclose(
        streamed.weight_losses(W), expected, atol=tolerance(max(expected), 744, EPS64)
    )


def test_aligned_targets_of_an_x_y_pair_are_not_shifted() -> None:
    model = PrefixLM().double()
    batch = token_batches([(4, 6)])[0]
    X, y = batch["input_ids"], batch["labels"]
    evaluator = LossEvaluator(model, (X, y))
    assert evaluator.model.loss_fn.tokens and not evaluator.model.loss_fn.shift
    w = near(model, 1)[0]
    logits = torch.func.functional_call(model, model.state_dict(), (X,))
    assert logits.shape == (4, 6, 7)
    work_loss = evaluator.weight_losses(w[None])[0]
    with torch.no_grad():
        total, count, _ = token_sums(load(model, w)(X), y, shift=False)
    assert count == 22
    assert work_loss == pytest.approx(float(total) / count, abs=tolerance(1.0, 22, EPS64))


class MaskedLM(PrefixLM):
    loss_type = "ForMaskedLM"  # as Hugging Face's masked language models say


def test_a_masked_language_model_is_not_shifted() -> None:
    model = MaskedLM().double()
    batches = token_batches(SHAPES)
    evaluator = LossEvaluator(model, loader(batches))
    assert evaluator.model.loss_fn.tokens and not evaluator.model.loss_fn.shift
    w = near(model, 1)[0]
    expected, _ = direct_loss(model, w, batches, shift=False)
    assert evaluator.weight_losses(w[None])[0] == pytest.approx(
        expected, abs=tolerance(expected, 56, EPS64)
    )


class OwnLoss(PrefixLM):
    def loss_fn(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the first position's prediction: a mean over examples."""
        return torch.nn.functional.cross_entropy(y_pred[:, 0], y[:, 0])


def test_a_models_own_loss_fn_wins_and_is_a_mean_over_examples() -> None:
    model = OwnLoss().double()
    batches = token_batches([(50, 7), (40, 12), (60, 5)])
    evaluator = LossEvaluator(model, loader(batches), memory_budget=1)  # batches of 64, 64, 22
    assert not evaluator.model.loss_fn.tokens and evaluator.data.n_batches == 3
    w = near(model, 1)[0]
    work = load(model, w)
    with torch.no_grad():
        first = torch.cat([work(b["input_ids"])[:, 0] for b in batches])
        labels = torch.cat([b["labels"][:, 0] for b in batches])
    expected = float(torch.nn.functional.cross_entropy(first, labels))
    assert evaluator.weight_losses(w[None])[0] == pytest.approx(
        expected, abs=tolerance(expected, 150, EPS64)
    )


def test_evaluation_data_with_every_label_ignored_are_refused() -> None:
    batch = token_batches([(2, 5)])[0]
    batch["labels"][:, 1:] = -100
    with pytest.raises(DataError, match="every label is ignored"):
        LossEvaluator(PrefixLM(), batch)


def test_a_dict_batch_without_labels_is_named() -> None:
    batch = token_batches([(2, 5)])[0]
    del batch["labels"]
    with pytest.raises(
        DataError, match=r"under 'labels' .* keys \['attention_mask', 'input_ids'\]"
    ):
        LossEvaluator(PrefixLM(), loader([batch]))


def test_label_tokens_outside_the_vocabulary_are_named() -> None:
    batch = token_batches([(2, 5)])[0]
    batch["labels"][1, 3] = 9
    with pytest.raises(DataError, match=r"label tokens in \[0, 6\] .* vocabulary of 7"):
        LossEvaluator(PrefixLM(), batch)
