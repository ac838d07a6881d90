"""The reference oracle of the token-loss tests: a direct computation of the mean cross-entropy over
every label token of a list of dict batches (summed over the batches, divided by the token count),
and a tiny causal language model (a prefix mean of token embeddings: cheap, and ``torch.vmap``
runs it)."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.utils.data import Dataset


class PrefixLM(nn.Module):
    """A causal language model: position t sees the mean embedding of tokens 0..t. Returns the
    logits (N, L, V), or a dict holding them (``output="dict"``) or a tuple (``"tuple"``)."""

    def __init__(self, vocab: int = 7, width: int = 4, output: str = "tensor", seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(vocab, width)
        self.mix = nn.Linear(width, width)
        self.head = nn.Linear(width, vocab)
        self.output = output

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        h = self.embed(input_ids)
        steps = torch.arange(1, h.shape[1] + 1, dtype=h.dtype, device=h.device)
        h = torch.cumsum(h, dim=1) / steps[:, None]
        logits = self.head(torch.tanh(self.mix(h)))
        if self.output == "dict":
            return {"logits": logits, "hidden": h}
        if self.output == "tuple":
            return logits, h
        return logits


class BatchNormLM(nn.Module):
    """A causal language model with a BatchNorm over the width of every position: position t
    normalises the mean embedding of tokens 0..t with statistics over every position of the
    batch."""

    def __init__(self, vocab: int = 5, width: int = 4, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(vocab, width)
        self.bn = nn.BatchNorm1d(width)
        self.head = nn.Linear(width, vocab)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        h = self.embed(input_ids)
        steps = torch.arange(1, h.shape[1] + 1, dtype=h.dtype, device=h.device)
        h = torch.cumsum(h, dim=1) / steps[:, None]
        h = self.bn(h.transpose(1, 2)).transpose(1, 2)
        return self.head(torch.tanh(h))


def token_batches(
    shapes: list[tuple[int, int]], vocab: int = 7, seed: int = 0, ignored: int = 2
) -> list[dict[str, torch.Tensor]]:
    """Dict batches of ``(examples, length)`` each, with the last ``ignored`` labels of the first
    example of each batch set to -100 (padding), so that batches hold different token counts."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for n, length in shapes:
        ids = torch.randint(0, vocab, (n, length), generator=generator)
        labels = ids.clone()
        labels[0, length - ignored :] = -100
        batches.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels})
    return batches


def load(model: nn.Module, weights: np.ndarray, dtype: torch.dtype = torch.float64) -> nn.Module:
    """A copy of ``model`` in ``dtype``, eval mode, with flat ``weights`` over its trainable
    parameters (in ``named_parameters()`` order)."""
    work = copy.deepcopy(model).to(dtype).eval()
    trainable = [p for p in work.parameters() if p.requires_grad]
    torch.nn.utils.vector_to_parameters(torch.as_tensor(weights, dtype=dtype), trainable)
    return work


def token_sums(
    logits: torch.Tensor, labels: torch.Tensor, shift: bool
) -> tuple[torch.Tensor, int, int]:
    """(sum of the token cross-entropies, label tokens, right predictions) of one batch."""
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
    used = labels != -100
    total = F.cross_entropy(logits[used], labels[used], reduction="sum")
    right = int((logits[used].argmax(-1) == labels[used]).sum())
    return total, int(used.sum()), right


def direct_loss(
    model: nn.Module, weights: np.ndarray, batches: list[dict], *, shift: bool = True
) -> tuple[float, float]:
    """The mean token cross-entropy over every label token of ``batches`` and the share of right
    predictions, with the model's weights set to ``weights`` (float64)."""
    work = load(model, weights)
    total, count, right = 0.0, 0, 0
    with torch.no_grad():
        for batch in batches:
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            out = work(**inputs)
            logits = out["logits"] if isinstance(out, dict) else out
            logits = logits[0] if isinstance(logits, tuple) else logits
            s, c, r = token_sums(logits, batch["labels"], shift)
            total, count, right = total + float(s), count + c, right + r
    return total / count, right / count


def direct_bn_loss(model: nn.Module, weights: np.ndarray, batches: list[dict]) -> float:
    """The mean token cross-entropy (shifted labels) of ``batches`` after recalibrating the
    BatchNorm statistics at ``weights``: one training-mode forward pass over the input sequences
    as given (every batch joined, all of one length), a cumulative average (momentum None), then
    eval mode."""
    work = load(model, weights)
    for m in work.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
            m.train()
    with torch.no_grad():
        work(input_ids=torch.cat([b["input_ids"] for b in batches]))
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in batches:
            s, c, _ = token_sums(work.eval()(input_ids=batch["input_ids"]), batch["labels"], True)
            total, count = total + float(s), count + c
    return total / count


def mean_of_batch_means(model: nn.Module, weights: np.ndarray, batches: list[dict]) -> float:
    """What weighting each batch alike would give (the wrong answer the tests tell apart)."""
    means = []
    with torch.no_grad():
        for batch in batches:
            out = load(PrefixLM(), weights)(input_ids=batch["input_ids"])
            s, c, _ = token_sums(out, batch["labels"], True)
            means.append(float(s) / c)
    return float(np.mean(means))


def direct_hessian(model: nn.Module, weights: np.ndarray, batches: list[dict]) -> np.ndarray:
    """The (P, P) Hessian in float64 of the mean token cross-entropy over every label token of
    ``batches`` (shifted labels), over the trainable parameters."""
    work = load(model, weights)
    named = [(n, p) for n, p in work.named_parameters() if p.requires_grad]
    count = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)

    def loss(flat: torch.Tensor) -> torch.Tensor:
        params, offset = {}, 0
        for name, p in named:
            params[name] = flat[offset : offset + p.numel()].reshape(p.shape)
            offset += p.numel()
        total = flat.new_zeros(())
        for batch in batches:
            logits = functional_call(work, params, (batch["input_ids"],))
            total = total + token_sums(logits, batch["labels"], True)[0]
        return total / count

    w = torch.as_tensor(weights, dtype=torch.float64)
    return torch.autograd.functional.hessian(loss, w).numpy()


class ItemDataset(Dataset):
    """Dict items of equal length (the default collate stacks them): map-style, streamable."""

    def __init__(self, batches: list[dict]):
        self.items = [
            {k: v[i] for k, v in b.items()} for b in batches for i in range(len(b["labels"]))
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]
