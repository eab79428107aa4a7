"""Verdicts: the one place that decides when a page may say "A beats B", "helps" or "does not".

Every chapter that compares a model with a control hands this module what it measured and the
words for each outcome; the rules that turn numbers into words are written once, here.

Two tests, chosen by what the measurement is:

- **Paired units** (:class:`Difference`, :func:`sign_flip_p`, :func:`directions`): a
  difference measured once per unit that pairs the two sides (a seed, or a run: a trained
  network and the same network untrained). The sign-flip test takes the 2^n ways the n
  differences' signs could fall under "no difference" (exactly up to 16 units, by random
  patterns beyond); with 3 seeds its smallest p-value is 1/8, so three seeds alone can never
  show an effect at 5%.
- **Seeds, concepts and words** (:class:`Resampler`, :func:`compare`): a score that is a mean
  over seeds and concepts of correlations computed over words (the SAE chapter's concept
  metric, appendix H.2). Its uncertainty has three sources, and a hierarchical bootstrap
  resamples all three: the seeds (with the same draws on both sides where the seed pairs them),
  the concepts (a different set of concepts would give a different mean), and the word pairs
  within each concept (other words would give other correlations). The p-value is normal,
  with the bootstrap's standard deviation as the standard error (:func:`compare` says why).

A page that draws many verdicts corrects them together with Holm's step-down method
(:func:`holm`), which keeps the chance of any false "beats" in the family at the level. How
often the test says "beats" when nothing differs is measured on null comparisons, not assumed
(:func:`false_positive_share`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np

LEVEL = 0.05
"""The family-wise error rate every page's verdicts are held to."""


# ------------------------------------------------------------------------ seeds only
@dataclass(frozen=True)
class Difference:
    """Paired differences, one per unit (a seed, a run): their mean, standard error and number,
    and the sign-flip p-values (exact up to 16 units, :func:`sign_flip_p`) for "the first side
    is not above the second" (``p_above``) and "not below" (``p_below``)."""

    mean: float
    se: float
    """Standard error of the mean (NaN with fewer than two pairs)."""
    n: int
    p_above: float
    p_below: float

    @classmethod
    def of(cls, d: Sequence[float]) -> "Difference":
        """The difference summarised from its paired values ``d`` (one per unit)."""
        d = np.asarray(d, dtype=float)
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        mean = float(d.mean()) if len(d) else float("nan")
        return cls(mean, float(se), len(d), sign_flip_p(d), sign_flip_p(-d))

    @classmethod
    def paired(cls, a: Mapping, b: Mapping) -> "Difference":
        """``a - b`` over the keys both hold (e.g. seeds), in key order."""
        keys = sorted(k for k in a if k in b)
        return cls.of([a[k] - b[k] for k in keys])

    def direction(self, level: float = LEVEL) -> int | None:
        """+1 (first side above), -1 (below) or 0 (neither shown) by the exact test at
        ``level`` in each direction; None when n seeds cannot reach it (0.5^n > level)."""
        if self.n == 0 or 0.5**self.n > level:
            return None
        if self.p_above <= level:
            return 1
        return -1 if self.p_below <= level else 0


def sign_flip_p(d: Sequence[float], n_random: int = 20_000, seed: int = 0) -> float:
    """One-sided p-value that the mean of ``d`` is not above zero, by flipping signs: exact
    over all 2^n patterns for n <= 16 (1 for an empty ``d``), else from ``n_random`` random
    patterns, (1 + #) / (n_random + 1)."""
    d = np.asarray(d, dtype=float)
    if len(d) == 0:
        return 1.0
    if len(d) <= 16:
        signs = np.array(list(product((1.0, -1.0), repeat=len(d))))
        return float(np.mean(signs @ d / len(d) >= d.mean() - 1e-12))
    signs = np.random.default_rng([seed, len(d)]).choice((1.0, -1.0), size=(n_random, len(d)))
    return float((1 + np.sum(signs @ d / len(d) >= d.mean() - 1e-12)) / (n_random + 1))


def directions(differences: Mapping[str, Difference], level: float = LEVEL
               ) -> dict[str, int | None]:
    """Each difference's direction, corrected together: the two-sided p-value 2 min(p_above,
    p_below) of every difference goes through :func:`holm`; +1 or -1 where it survives, 0
    where not, None where too few pairs could ever reach ``level`` (2 x 0.5^n > level)."""
    names = list(differences)
    p_two = [min(1.0, 2 * min(d.p_above, d.p_below)) for d in differences.values()]
    adjusted = dict(zip(names, holm(p_two))) if names else {}
    out: dict[str, int | None] = {}
    for name, d in differences.items():
        if d.n == 0 or 2 * 0.5**d.n > level:
            out[name] = None
        elif adjusted[name] <= level:
            out[name] = 1 if d.p_above <= d.p_below else -1
        else:
            out[name] = 0
    return out


@dataclass(frozen=True)
class Wording:
    """How a page words each outcome of a verdict."""

    above: str
    below: str
    same: str
    undecided: str

    def __call__(self, direction: int | None) -> str:
        return {1: self.above, -1: self.below, 0: self.same, None: self.undecided}[direction]


BEATS = Wording("beats", "does not beat", "does not beat",
                "cannot be told apart from (too few seeds)")
"""A trained model against a control it should beat (the SAE chapter)."""

HELPS = Wording("helps", "hurts", "makes no difference we can detect",
                "cannot be told from zero with so few seeds")
"""Training against no training (the simulations chapter)."""


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values: reject where adjusted <= level, and the chance of
    any false rejection in the family stays at the level (Holm 1979)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def false_positive_share(p_values: Sequence[float], level: float = LEVEL
                         ) -> tuple[float, float, float]:
    """Share of null comparisons declared positive at ``level`` (uncorrected), with a 95%
    Wilson interval: (share, low, high)."""
    p = np.asarray(p_values, dtype=float)
    n, k = len(p), int((p <= level).sum())
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    z, share = 1.959964, k / n
    centre = (share + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(share * (1 - share) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return share, max(0.0, centre - half), min(1.0, centre + half)


# ------------------------------------------------------- seeds, concepts and words
class Resampler:
    """The replicate draws of a hierarchical bootstrap, shared by every system compared on the
    same rows (common random numbers: a replicate resamples the same concepts and words for
    all of them).

    Rows are words; ``units_N`` groups them into resampling units (a word pair: its base and
    target row) and ``strata_N`` gives each row's concept; units are drawn with replacement
    within each concept, so every replicate keeps each concept's number of pairs. Concepts are
    drawn with replacement among ``n_concepts``, seeds among ``n_seeds`` positions.
    """

    def __init__(self, strata_N: np.ndarray, units_N: np.ndarray, n_concepts: int,
                 n_seeds: int, n_boot: int = 2000, seed: int = 0):
        rng = np.random.default_rng([seed, 2024])
        strata_N, units_N = np.asarray(strata_N), np.asarray(units_N)
        self.n_boot = n_boot
        self.row_weights_BN = np.zeros((n_boot, len(units_N)), np.float32)
        for stratum in np.unique(strata_N):
            units = np.unique(units_N[strata_N == stratum])
            draws = rng.integers(len(units), size=(n_boot, len(units)))
            counts_BU = np.stack([np.bincount(d, minlength=len(units)) for d in draws])
            rows = [np.flatnonzero(units_N == u) for u in units]
            for j, unit_rows in enumerate(rows):
                self.row_weights_BN[:, unit_rows] = counts_BU[:, [j]]
        draws = rng.integers(n_concepts, size=(n_boot, n_concepts))
        self.concept_weights_BK = np.stack([np.bincount(d, minlength=n_concepts)
                                            for d in draws]) / n_concepts
        self.n_seeds = n_seeds
        self.seed_draws_BS = rng.integers(n_seeds, size=(n_boot, n_seeds))
        self.other_seed_draws_BS = rng.integers(n_seeds, size=(n_boot, n_seeds))

    def seed_weights(self, n: int, paired: bool, second: bool = False) -> np.ndarray:
        """(B, n) weights of ``n`` seeds in each replicate: the shared draws (or, for the
        unpaired second side, independent ones); fewer seeds than positions use the first."""
        draws = self.other_seed_draws_BS if (second and not paired) else self.seed_draws_BS
        draws = draws[:, :n] % n
        return np.stack([np.bincount(d, minlength=n) for d in draws]) / n


def column_correlations(y_NK: np.ndarray, x_NK: np.ndarray, weights_BN: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation of each column of ``x`` with the same column of ``y``: on the rows
    as they are (``K``), and under every replicate's row weights (``B x K``). A constant
    column has correlation 0.

    The columns are standardised first (a correlation does not see location or scale), so the
    replicates' weighted moments can be formed in float32, as one matrix product, on one thread
    so that its float32 sums do not depend on the cores the process has."""
    from ipta.parallel import one_blas_thread

    def standard(a_NK: np.ndarray) -> np.ndarray:
        a = np.asarray(a_NK, np.float64)
        a = a - a.mean(0)
        sd = a.std(0)
        return a / np.where(sd > 0, sd, 1.0)

    y, x = standard(y_NK), standard(x_NK)
    K = y.shape[1]
    moments = np.hstack([y, x, y * x, y * y, x * x])
    weights = np.asarray(weights_BN, np.float32)
    with one_blas_thread():  # the same sums on any number of cores (see one_blas_thread)
        sums = (weights @ moments.astype(np.float32)).astype(np.float64)
    total = weights.sum(1, dtype=np.float64)[:, None]
    m_y, m_x, m_yx, m_yy, m_xx = (sums[:, i * K:(i + 1) * K] / total for i in range(5))
    cov = m_yx - m_y * m_x
    var = np.maximum(m_yy - m_y**2, 0.0) * np.maximum(m_xx - m_x**2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.where(var > 1e-12, cov / np.sqrt(var), 0.0)
    return (y * x).mean(0), boot  # standardised columns: the correlation is their mean product


@dataclass(frozen=True)
class Comparison:
    """System A against system B on a mean of per-seed, per-concept scores: the observed gain,
    its hierarchical-bootstrap standard error, a 95% interval and the one-sided p-value."""

    gain: float
    sd: float
    """The bootstrap standard deviation of the gain (its standard error)."""
    low: float
    high: float
    p: float
    """One-sided p-value for "A is not above B": 1 - Phi(gain / sd)."""


def compare(a_SK: np.ndarray, a_SBK: np.ndarray, b_SK: np.ndarray, b_SBK: np.ndarray,
            resampler: Resampler, paired: bool, resample_seeds: bool = True) -> Comparison:
    """Mean over seeds and concepts of A's scores minus B's, with its standard error from the
    hierarchical bootstrap of ``resampler``. ``*_SK`` are the observed scores per seed and
    concept, ``*_SBK`` the same under each replicate's word weights; ``paired``: seed i of A
    and seed i of B share their draws (same initialisation), else each side's seeds are drawn
    on their own; ``resample_seeds=False`` keeps every seed in every replicate (the part of
    the error that concepts and words alone make).

    Only the bootstrap's spread is used: the interval is the gain +- 1.96 standard errors and
    the p-value normal. Its centre is not, because the mean of a correlation over resampled
    words is biased where codes are heavy-tailed (exp of a code): on the planted benchmark it
    sat up to 0.08 above the observed value for one concept, by a different amount for sparse
    and dense codes."""
    from scipy.stats import norm

    a_SK, b_SK = np.atleast_2d(a_SK), np.atleast_2d(b_SK)
    gain = float(a_SK.mean() - b_SK.mean())
    if resample_seeds:
        wa_BS = resampler.seed_weights(len(a_SK), paired)
        wb_BS = resampler.seed_weights(len(b_SK), paired, second=True)
    else:
        wa_BS = np.full((resampler.n_boot, len(a_SK)), 1 / len(a_SK))
        wb_BS = np.full((resampler.n_boot, len(b_SK)), 1 / len(b_SK))
    mean_a_BK = np.einsum("bs,sbk->bk", wa_BS, a_SBK)
    mean_b_BK = np.einsum("bs,sbk->bk", wb_BS, b_SBK)
    gains_B = ((mean_a_BK - mean_b_BK) * resampler.concept_weights_BK).sum(1)
    sd = float(gains_B.std(ddof=1))
    p = float(norm.sf(gain / sd)) if sd > 0 else float(gain <= 0)
    return Comparison(gain, sd, gain - 1.959964 * sd, gain + 1.959964 * sd, p)
