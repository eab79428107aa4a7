"""Verdicts: the one place that decides when a page may say "A beats B", "helps" or "does not".

Every chapter that compares a trained model with a control hands this module the paired
differences it measured (one per seed, paired where the seed is shared) and words for the
three outcomes; the rule that turns numbers into words is written once, here.

The rule: a :class:`Difference` over n paired units has a mean and a standard error; it is
*positive* when the mean exceeds twice its standard error, *negative* when it is below minus
twice, and *undecided* with a single unit (no spread to compare against).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Difference:
    """The mean of paired differences, its standard error over the pairs and their number."""

    mean: float
    se: float
    """Standard error of the mean (NaN with fewer than two pairs)."""
    n: int

    @classmethod
    def of(cls, d: np.ndarray) -> "Difference":
        """The difference summarised from its paired values ``d`` (one per unit, e.g. seed)."""
        d = np.asarray(d, dtype=float)
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        return cls(float(d.mean()) if len(d) else float("nan"), float(se), len(d))

    @classmethod
    def paired(cls, a: Mapping, b: Mapping) -> "Difference":
        """``a - b`` over the keys both hold (e.g. seeds), in key order."""
        keys = sorted(k for k in a if k in b)
        return cls.of(np.array([a[k] - b[k] for k in keys]))

    def direction(self) -> int | None:
        """+1 (A above B), -1 (below) or 0 (no difference shown); None when undecidable."""
        if not np.isfinite(self.se):
            return None
        if self.mean > 2 * self.se:
            return 1
        return -1 if self.mean < -2 * self.se else 0


@dataclass(frozen=True)
class Wording:
    """How a page words each outcome of a :class:`Difference`."""

    above: str
    below: str
    same: str
    undecided: str

    def __call__(self, difference: Difference) -> str:
        return {1: self.above, -1: self.below, 0: self.same,
                None: self.undecided}[difference.direction()]


BEATS = Wording("beats", "does not beat", "does not beat", "cannot be told apart from (one seed)")
"""A trained model against a control it should beat (the SAE chapter)."""

HELPS = Wording("helps", "hurts", "makes no difference we can detect",
                "cannot be told from zero with one seed")
"""Training against no training (the simulations chapter)."""
