"""The analyses on the one engine take token losses too: the curvature operators and the gradient
weight each evaluation batch by its label tokens, as the loss does (against a direct computation
over every label token, whatever the batches the memory budget cuts the data into), and a curve
trains between two language models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call
from torch.utils.data import DataLoader

from loss_landscape_anim import CurvatureEvaluator, connect, loss_along_curve
from loss_landscape_anim.evaluate.gradient import loss_and_gradient
from token_oracle import PrefixLM, direct_hessian, direct_loss, load, token_batches
from tolerance import EPS32, EPS64

#: Batches of different token counts (see token_batches: the first example's last labels ignored).
SHAPES = [(3, 7), (2, 12), (4, 5)]


def loader(batches: list[dict]) -> DataLoader:
    return DataLoader(batches, batch_size=None)


def weights_near(model: torch.nn.Module, scale: float = 0.3, seed: int = 1) -> np.ndarray:
    w = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double().numpy()
    return w + scale * np.random.default_rng(seed).standard_normal(w.size)


def direct_ggn(model: torch.nn.Module, weights: np.ndarray, batches: list[dict]) -> np.ndarray:
    """``J^T H_z J`` (P, P) float64 of the mean cross-entropy over every label token (shifted
    labels): J the Jacobian of each used token's logits, H_z = (diag(p) - p p^T) / tokens."""
    work = load(model, weights)
    named = [(n, p) for n, p in work.named_parameters() if p.requires_grad]

    def used_logits(flat: torch.Tensor) -> torch.Tensor:
        params, offset = {}, 0
        for name, p in named:
            params[name] = flat[offset : offset + p.numel()].reshape(p.shape)
            offset += p.numel()
        parts = []
        for batch in batches:
            logits = functional_call(work, params, (batch["input_ids"],))[:, :-1]
            parts.append(logits[batch["labels"][:, 1:] != -100])
        return torch.cat(parts)

    w = torch.as_tensor(weights, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(used_logits, w)  # (T, V, P)
    p = used_logits(w).softmax(-1)  # (T, V)
    Hz = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    return (torch.einsum("tvp,tvu,tuq->pq", J, Hz, J) / J.shape[0]).numpy()


def evaluators(model: torch.nn.Module, batches: list[dict], **options) -> list:
    """The data in one evaluation batch and cut into batches of two examples."""
    whole = CurvatureEvaluator(model, loader(batches), **options)
    cut = CurvatureEvaluator(model, loader(batches), memory_budget=2 * whole.per_example, **options)
    assert whole.data.n_batches == 1 and cut.data.n_batches > 1
    return [whole, cut]


def test_the_gauss_newton_matrix_of_a_token_loss_matches_the_direct_one() -> None:
    model = PrefixLM(vocab=5, width=3).double()
    batches = token_batches(SHAPES, vocab=5)
    w = weights_near(model)
    reference = direct_ggn(model, w, batches)
    scale = np.abs(reference).max()
    for curvature in evaluators(model, batches, operator="ggn"):
        G = curvature.dense_hessians(torch.as_tensor(w[None])).numpy()[0]
        np.testing.assert_allclose(G, reference, rtol=0, atol=1e3 * EPS64 * scale)


def test_the_gradient_of_a_token_loss_weights_batches_by_their_tokens() -> None:
    model = PrefixLM(vocab=5, width=3).double()
    batches = token_batches(SHAPES, vocab=5)
    w = weights_near(model)
    work = load(model, w)
    params = dict(work.named_parameters())
    total, count = torch.zeros((), dtype=torch.float64), 0
    for batch in batches:
        logits = functional_call(work, params, (batch["input_ids"],))[:, :-1]
        labels = batch["labels"][:, 1:]
        used = labels != -100
        total = total + F.cross_entropy(logits[used], labels[used], reduction="sum")
        count += int(used.sum())
    reference_loss = direct_loss(model, w, batches)[0]
    assert abs(float((total / count).detach()) - reference_loss) <= 1e3 * EPS64 * abs(
        reference_loss
    )
    grads = torch.autograd.grad(total / count, list(params.values()))
    reference = torch.cat([g.reshape(-1) for g in grads]).numpy()
    scale = np.abs(reference).max()
    for evaluator in evaluators(model, batches):
        value, gradient = loss_and_gradient(evaluator.model, evaluator.data, torch.as_tensor(w))
        assert abs(value - reference_loss) <= 1e3 * EPS64 * abs(reference_loss)
        np.testing.assert_allclose(gradient.numpy(), reference, rtol=0, atol=1e3 * EPS64 * scale)


def test_the_empirical_fisher_of_a_token_loss_is_refused_with_the_alternative() -> None:
    model = PrefixLM(vocab=5, width=3).double()
    with pytest.raises(ValueError, match=r"operator='fisher'.*token loss.*operator='ggn'"):
        CurvatureEvaluator(model, loader(token_batches(SHAPES, vocab=5)), operator="fisher")


def test_a_curve_between_two_token_models_ends_at_their_losses() -> None:
    model = PrefixLM(vocab=5, width=3)
    batches = token_batches([(4, 6), (3, 9)], vocab=5)
    start = weights_near(model, scale=0.0)
    end = weights_near(model, seed=2)
    curve = connect(model, loader(batches), start, end, epochs=2, progress=False)
    line = loss_along_curve(model, loader(batches), curve, n_points=3)
    for value, w in ((line.loss[0], start), (line.loss[-1], end)):
        reference = direct_loss(model, w, batches)[0]
        assert abs(value - reference) <= 1e3 * EPS32 * abs(reference)
    assert curve.train_loss is not None and np.isfinite(curve.train_loss).all()
    assert np.isfinite(line.loss).all()


class AttentionLM(torch.nn.Module):
    """One causal self-attention layer between an embedding and a head: through
    ``F.scaled_dot_product_attention`` (``fused``, a Hugging Face model's default ``"sdpa"``) or
    written out; the same function of the same weights."""

    def __init__(self, vocab: int = 5, width: int = 4, fused: bool = True):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(vocab, width)
        self.qkv = torch.nn.Linear(width, 3 * width)
        self.head = torch.nn.Linear(width, vocab)
        self.fused = fused

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        h = self.embed(input_ids)
        n, length, width = h.shape
        # two heads: (N, heads, L, width / heads), the layout of a Hugging Face model's call
        q, k, v = self.qkv(h).view(n, length, 3, 2, width // 2).permute(2, 0, 3, 1, 4)
        if self.fused:
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            later = torch.ones(length, length, dtype=torch.bool).triu(1)
            scores = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
            attended = scores.masked_fill(later, float("-inf")).softmax(-1) @ v
        return self.head(h + attended.transpose(1, 2).reshape(n, length, width))


@pytest.mark.parametrize("operator", ["hessian", "ggn"])
def test_curvature_of_fused_attention_matches_the_attention_written_out(operator) -> None:
    model = AttentionLM().double()
    written_out = AttentionLM(fused=False).double()
    batches = token_batches(SHAPES, vocab=5)
    w = weights_near(model)
    reference = (direct_ggn if operator == "ggn" else direct_hessian)(written_out, w, batches)
    scale = np.abs(reference).max()
    curvature = CurvatureEvaluator(model, loader(batches), operator=operator)
    H = curvature.dense_hessians(torch.as_tensor(w[None])).numpy()[0]
    np.testing.assert_allclose(H, reference, rtol=0, atol=1e3 * EPS64 * scale)
