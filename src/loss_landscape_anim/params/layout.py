"""One layout for flat parameter vectors.

Every other module works on flat vectors of the model's trainable parameters, in
``model.parameters()`` order (the order ``torch.nn.utils.parameters_to_vector`` uses): all of
them for a model trained whole, the trainable subspace of a model with frozen parameters
(``requires_grad=False``: a LoRA adapter's base model, frozen layers), whose frozen rest keeps
its values. This module is the only place that knows how such a vector maps back to named
tensors, and the round trip is exact.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._validate import check_materialised
from ..errors import IncompatibleFileError


@dataclass(frozen=True)
class ParamLayout:
    """Names and shapes of a model's parameters, in ``model.parameters()`` order."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        names, shapes = self.names, self.shapes
        if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
            raise TypeError(
                f"Expected the layout's names to be a tuple of strings but got {names!r}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"Expected the layout's names to be distinct but got {names!r}")
        if (
            not isinstance(shapes, tuple)
            or len(shapes) != len(names)
            or not all(
                isinstance(s, tuple)
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in s)
                for s in shapes
            )
        ):
            raise ValueError(
                f"Expected one shape (a tuple of sizes >= 0) per name in the layout but got "
                f"{len(names)} names and shapes {shapes!r}"
            )

    @classmethod
    def of(cls, model: nn.Module) -> ParamLayout:
        """The layout of ``model``'s trainable parameters (``requires_grad=True``), or of all of
        them when none is trainable (a model that is only evaluated); ``ValueError`` for a model
        with lazy parameters not materialised yet, or with none."""
        named = _named(model)
        trainable = [(n, p) for n, p in named if p.requires_grad]
        chosen = trainable or named
        return cls(tuple(n for n, _ in chosen), tuple(tuple(p.shape) for _, p in chosen))

    @classmethod
    def of_all(cls, model: nn.Module) -> ParamLayout:
        """The layout of every parameter of ``model``, frozen ones included."""
        named = _named(model)
        return cls(tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named))

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def n_params(self) -> int:
        return sum(self.sizes)

    def offsets(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of each parameter in the flat vector."""
        bounds = np.cumsum((0, *self.sizes))
        return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]

    def flatten(self, model: nn.Module) -> torch.Tensor:
        """The model's parameters of this layout as one detached 1-D tensor (a copy)."""
        self.check_model(model)
        return flatten_params(model, self.names)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named views into ``flat`` (shape (..., P)); leading batch dimensions are kept."""
        if flat.shape[-1] != self.n_params:
            raise ValueError(
                f"Expected a flat parameter vector of length {self.n_params} but got {flat.shape[-1]}"
            )
        lead = tuple(flat.shape[:-1])
        return {
            name: flat[..., a:b].reshape((*lead, *shape))
            for name, shape, (a, b) in zip(self.names, self.shapes, self.offsets(), strict=True)
        }

    def check_model(self, model: nn.Module) -> None:
        """Raise :class:`IncompatibleFileError` unless this is the layout of ``model``'s
        trainable parameters or of all of them."""
        other = ParamLayout.of(model)
        if other != self and ParamLayout.of_all(model) != self:
            raise IncompatibleFileError(
                f"Expected a model with {self.n_params} parameters in tensors {self.describe()} "
                f"but got {other.n_params} in {other.describe()}"
            )

    def check_spans(self, model_layout: ParamLayout, what: str) -> None:
        """Raise :class:`IncompatibleFileError` unless ``what`` (a plane or path of this layout)
        spans the parameters ``model_layout`` of the model it meets, tensor by tensor: the
        same count of values in other tensors (another set of frozen layers) is refused too,
        naming the first tensor that differs."""
        if model_layout == self:
            return
        pairs = zip(
            zip(self.names, self.shapes, strict=True),
            zip(model_layout.names, model_layout.shapes, strict=True),
            strict=False,
        )
        first = next(
            (f"{a[0]}{list(a[1])} against {b[0]}{list(b[1])}" for a, b in pairs if a != b),
            f"{len(self.names)} tensors against {len(model_layout.names)}",
        )
        raise IncompatibleFileError(
            f"Expected {what} to span the model's parameters ({model_layout.n_params} values in "
            f"tensors {model_layout.describe()}: its trainable ones when some are frozen) but it "
            f"spans {self.n_params} in {self.describe()} ({first}): a plane or path of another "
            "model, or of the same model with other parameters frozen (requires_grad)"
        )

    def subspace(self, n_frozen: int) -> str:
        """What the layout spans in words, for a model with ``n_frozen`` more parameter values
        frozen: "" when none is; else how many of the weights it holds and which kinds (the last
        part of their names that is not an index, ``weight``, ``bias`` or ``default``)."""
        if n_frozen <= 0:
            return ""
        kinds: list[str] = []
        for name in self.names:
            parts = [p for p in name.split(".") if not p.isdigit() and p not in _GENERIC]
            kind = parts[-1] if parts else name
            if kind not in kinds:
                kinds.append(kind)
        shown = ", ".join(kinds[:3]) + (", ..." if len(kinds) > 3 else "")
        total = self.n_params + n_frozen
        return f"{self.n_params:,} trainable of {total:,} weights: {shown}"

    def describe(self, limit: int = 4) -> str:
        parts = [f"{n}{list(s)}" for n, s in zip(self.names, self.shapes, strict=True)]
        more = f", ... ({len(parts) - limit} more)" if len(parts) > limit else ""
        return "[" + ", ".join(parts[:limit]) + more + "]"

    def to_json(self) -> dict[str, list]:
        return {"names": list(self.names), "shapes": [list(s) for s in self.shapes]}

    @classmethod
    def from_json(cls, data: dict) -> ParamLayout:
        """The layout :meth:`to_json` wrote; ``ValueError``/``TypeError`` for anything else."""
        if not isinstance(data, dict) or not isinstance(data.get("names"), list):
            raise TypeError(
                f"Expected a layout {{'names': [...], 'shapes': [...]}} but got {data!r}"
            )
        shapes = data.get("shapes")
        if not isinstance(shapes, list) or not all(isinstance(s, list) for s in shapes):
            raise TypeError(f"Expected the layout's shapes to be lists of sizes but got {shapes!r}")
        return cls(tuple(data["names"]), tuple(tuple(s) for s in shapes))


#: Parts of parameter names that say nothing of what a parameter is.
_GENERIC = ("weight", "bias", "default")


def _named(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    check_materialised(model)
    named = list(model.named_parameters())
    if not named:
        raise ValueError(
            f"Expected a model with at least one parameter but {type(model).__name__} has none"
        )
    return named


def flatten_params(model: nn.Module, names: tuple[str, ...] | None = None) -> torch.Tensor:
    """The parameters of ``model`` (those named ``names``, default all) as one detached 1-D
    tensor, in ``parameters()`` order."""
    if names is None:
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    wanted = set(names)
    return torch.cat([p.detach().reshape(-1) for n, p in model.named_parameters() if n in wanted])


def n_frozen(model: nn.Module, layout: ParamLayout) -> int:
    """The parameter values of ``model`` that ``layout`` leaves out (frozen ones)."""
    return sum(p.numel() for p in model.parameters()) - layout.n_params
