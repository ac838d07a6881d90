"""``TinyGPT``: a causal decoder-only transformer in plain ``torch.nn``. Causality and padding
checked on its logits, its loss over :class:`SequenceDataModule` against a direct computation,
``torch.vmap`` over its weights against one forward pass per point, and that it learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call

from loss_landscape_anim import LossEvaluator, SequenceDataModule, TinyGPT, train
from loss_landscape_anim.losses import token_cross_entropy
from tolerance import EPS32


def gpt_parameters(vocab: int, length: int, width: int, layers: int) -> int:
    """A GPT's parameter count written out: embeddings, per block two layer norms, the attention's
    query/key/value and output projections and a 4x-wide MLP (with biases), the final norm, the
    head."""
    block = 2 * 2 * width + (3 * width * width + 3 * width) + (width * width + width)
    block += (4 * width * width + 4 * width) + (4 * width * width + width)
    return vocab * width + length * width + layers * block + 2 * width + width * vocab + vocab


def test_a_few_hundred_thousand_parameters_of_plain_torch_nn() -> None:
    model = TinyGPT()
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == gpt_parameters(12, 16, 96, 2)
    assert 200_000 <= n_params < 1_000_000
    narrow = TinyGPT(width=64, n_layers=3)
    assert sum(p.numel() for p in narrow.parameters()) == gpt_parameters(12, 16, 64, 3)
    assert TinyGPT(width=128).head.in_features == 128
    ids = torch.randint(0, 12, (3, 9))
    assert model(ids).shape == (3, 9, 12)


def test_logits_depend_on_earlier_tokens_only() -> None:
    torch.manual_seed(0)
    model = TinyGPT().eval()
    ids = torch.randint(0, 12, (2, 9))
    changed = ids.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 12
    with torch.no_grad():
        a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=0, atol=0)
    assert not torch.allclose(a[:, 6:], b[:, 6:])


def test_padding_masked_out_changes_nothing_of_the_tokens() -> None:
    torch.manual_seed(0)
    model = TinyGPT().eval()
    ids = torch.randint(0, 12, (2, 7))
    padded = torch.cat([torch.zeros(2, 2, dtype=ids.dtype), ids], dim=1)  # padding in front
    mask = torch.cat([torch.zeros(2, 2), torch.ones(2, 7)], dim=1).long()
    with torch.no_grad():
        logits = model(padded, attention_mask=mask)
    assert torch.isfinite(logits).all()  # the padding rows attend to nothing: no 0/0
    # a token's logits see the real tokens before it only, not the padding (positions shift)
    shifted = TinyGPT().eval()
    shifted.load_state_dict(model.state_dict())
    with torch.no_grad():
        again = shifted(padded, attention_mask=torch.ones_like(mask))
    assert not torch.allclose(logits[:, 2:], again[:, 2:])


def test_bad_shapes_are_named() -> None:
    with pytest.raises(ValueError, match="width to be a multiple of n_heads=4 but got 30"):
        TinyGPT(width=30)
    with pytest.raises(ValueError, match="at most max_length=16 tokens but got 17"):
        TinyGPT()(torch.zeros(1, 17, dtype=torch.long))


def test_its_loss_on_the_addition_task_is_the_token_mean_over_the_answers() -> None:
    torch.manual_seed(0)
    model = TinyGPT().eval()
    data = SequenceDataModule(n_sequences=40)
    ids, labels = data.dataset.inputs["input_ids"], data.dataset.labels
    with torch.no_grad():
        logits = model(ids)[:, :-1]
    answers = labels[:, 1:]
    assert int((answers != -100).sum()) == 40 * 3  # the three digits of each sum
    expected = torch.nn.functional.cross_entropy(logits[answers != -100], answers[answers != -100])
    evaluator = LossEvaluator(model, data)
    got = evaluator.weight_losses(evaluator.model.flat().double().numpy()[None])[0]
    assert got == pytest.approx(float(expected), rel=64 * EPS32)


def test_vmap_over_its_weights_matches_one_pass_per_point() -> None:
    torch.manual_seed(0)
    model = TinyGPT().eval()
    data = SequenceDataModule(n_sequences=16)
    ids, labels = data.dataset.inputs["input_ids"], data.dataset.labels
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    W = flat + 0.05 * torch.randn(3, flat.numel(), generator=torch.Generator().manual_seed(1))
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for p in model.parameters()]
    shapes = [p.shape for p in model.parameters()]

    def params(w: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = w.split(sizes, dim=-1)
        return {
            n: t.reshape(*w.shape[:-1], *s) for n, t, s in zip(names, parts, shapes, strict=True)
        }

    def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return token_cross_entropy(functional_call(model, p, (ids,)), labels, shift=True)

    with torch.no_grad():
        mapped = torch.vmap(loss)(params(W))
        one_by_one = torch.stack([loss(params(w)) for w in W])
    torch.testing.assert_close(mapped, one_by_one, rtol=64 * EPS32, atol=0)


def test_it_learns_to_add() -> None:
    data = SequenceDataModule(n_sequences=64)
    torch.manual_seed(0)
    trajectory = train(TinyGPT(), data, 60, seed=0, progress=False)
    assert trajectory.loss[-1] < 0.5 * trajectory.loss[0]
    assert trajectory.accuracy[-1] > trajectory.accuracy[0] + 0.3
    assert np.all(np.diff(trajectory.steps) == 1)
