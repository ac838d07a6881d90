"""``LossScale``: how loss values map to colours, contour levels, heights and colour-bar ticks.

Losses of a landscape span decades, so they are coloured on a log scale (``LogNorm``, levels spaced
geometrically) whenever every finite value is positive; the colour bar and the 3D height axis then
read in loss values (0.05, 0.1, 0.2, ...), not in ln(loss) numbers. A grid with a zero or negative
loss falls back to a linear scale, since a log scale cannot show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm, Normalize

__all__ = ["LossScale", "nice_ticks"]

#: Mantissas of the colour-bar ticks on a log scale, coarse to fine: the first set giving at least
#: ``_MIN_TICKS`` ticks inside the range is used.
_MANTISSAS: tuple[tuple[float, ...], ...] = (
    (1.0,),
    (1.0, 2.0, 5.0),
    (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),
    tuple(float(m) for m in range(1, 10)),
)
_MIN_TICKS = 4
_MAX_TICKS = 9


@dataclass(frozen=True)
class LossScale:
    """The colour scale of a set of loss values.

    Attributes:
        log: True for a log scale (every finite value positive), False for a linear one.
        levels: (L + 1,) contour level boundaries from the smallest to the largest finite value,
            geometric on a log scale, even on a linear one.
        norm: the matching matplotlib norm (``LogNorm`` or ``Normalize``).
    """

    log: bool
    levels: np.ndarray
    norm: Normalize

    @classmethod
    def of(cls, loss: Any, levels: int | Any = 30, log: bool = True) -> LossScale | None:
        """The scale of ``loss`` (any shape; non-finite values ignored), with ``levels`` contour
        intervals (an int) or the given level boundaries (loss values). None when fewer than two
        distinct finite values exist (nothing to colour)."""
        values = np.asarray(loss, dtype=float)
        finite = values[np.isfinite(values)]
        if finite.size < 2 or np.ptp(finite) == 0:
            return None
        use_log = bool(log) and bool((finite > 0).all())
        low, high = float(finite.min()), float(finite.max())
        if np.ndim(levels) == 0:
            n = int(levels)
            if n < 1:
                raise ValueError(f"Expected levels to be a positive integer but got {levels!r}")
            bounds = np.geomspace(low, high, n + 1) if use_log else np.linspace(low, high, n + 1)
        else:
            bounds = np.sort(np.asarray(levels, dtype=float))
            if bounds.size < 2 or (use_log and bounds[0] <= 0):
                raise ValueError(
                    "Expected levels to be an int or at least 2 loss values (positive on a log "
                    f"scale) but got {levels!r}"
                )
            low, high = float(bounds[0]), float(bounds[-1])
        norm = LogNorm(vmin=low, vmax=high) if use_log else Normalize(vmin=low, vmax=high)
        return cls(use_log, bounds, norm)

    @property
    def low(self) -> float:
        return float(self.levels[0])

    @property
    def high(self) -> float:
        return float(self.levels[-1])

    def height(self, loss: Any) -> np.ndarray:
        """Heights for a 3D view: log10(loss) on a log scale (NaN where not positive), else the
        loss."""
        values = np.asarray(loss, dtype=float)
        if not self.log:
            return values
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)

    def ticks(self) -> np.ndarray:
        """Round loss values inside the range, for the colour bar and the height axis."""
        return nice_ticks(self.low, self.high, self.log)

    def tick_labels(self) -> list[str]:
        return [f"{t:.6g}" for t in self.ticks()]

    def colorbar(
        self,
        fig: Any,
        mappable: Any,
        ax: Any,
        text_size: float,
        *,
        in_heights: bool = False,
        **kwargs: Any,
    ) -> Any:
        """A colour bar for ``mappable`` beside ``ax``, ticked in loss values; ``in_heights``:
        ``mappable`` maps the heights of :meth:`height`, not the losses."""
        bar = fig.colorbar(mappable, ax=ax, **kwargs)
        ticks = self.height(self.ticks()) if in_heights else self.ticks()
        bar.set_ticks(ticks, labels=self.tick_labels())
        bar.ax.minorticks_off()
        label = "loss (log scale)" if self.log else "loss"
        bar.set_label(label, fontsize=text_size)
        bar.ax.tick_params(labelsize=text_size - 1)
        return bar


def nice_ticks(low: float, high: float, log: bool) -> np.ndarray:
    """Ticks between ``low`` and ``high``: ``m * 10**k`` with round mantissas ``m`` on a log
    scale (the coarsest set giving at least 4 ticks; evenly spaced round values when the range is
    too narrow for that), else matplotlib's linear ticks."""
    if not log:
        from matplotlib.ticker import MaxNLocator

        linear = np.asarray(MaxNLocator(nbins=6).tick_values(low, high), dtype=float)
        return linear[(linear >= low) & (linear <= high)]
    exponents = np.arange(np.floor(np.log10(low)), np.ceil(np.log10(high)) + 1)
    ticks: np.ndarray = np.array([])
    previous: np.ndarray = ticks
    for mantissas in _MANTISSAS:
        ticks = np.array([m * 10.0**e for e in exponents for m in mantissas])
        ticks = ticks[(ticks >= low * (1 - 1e-9)) & (ticks <= high * (1 + 1e-9))]
        if len(ticks) >= _MIN_TICKS:
            if len(ticks) > _MAX_TICKS and len(previous) >= 2:
                ticks = previous  # a finer set would crowd the bar
            break
        previous = ticks
    if len(ticks) > _MAX_TICKS:
        ticks = ticks[:: -(-len(ticks) // _MAX_TICKS)]
    if len(ticks) < 3:  # a range under a factor of ~3: a log axis looks linear there
        ticks = nice_ticks(low, high, log=False)
    return ticks if len(ticks) >= 2 else np.array([low, high])
