"""SAE metrics with written definitions (paper section 5, appendix H.2 and H.3).

Reconstruction and sparsity, for inputs x_n in R^D (n = 1..N), reconstructions xhat_n and codes
z_n in R^F:

- ``mse``: mean over samples *and* dimensions of (x - xhat)^2, i.e. (1/(N D)) sum ||x_n - xhat_n||^2,
  in the units of the inputs (the model's activations, not the SAE's normalised units).
- ``fvu`` (fraction of variance unexplained): sum_n ||x_n - xhat_n||^2 / sum_n ||x_n - xbar||^2,
  with xbar the mean input over the same N samples; 0 is perfect, 1 is no better than xbar.
- ``l0``: mean over samples of the number of non-zero codes, (1/N) sum_n #{f : z_nf != 0}.
- ``dead_fraction``: share of the F features that are zero on every one of the N samples.
- ``code_scale`` (``*_code_p99``): the 99th percentile of the non-zero codes, their size.

The concept metric of appendix H.2: for each concept k a logistic-regression probe is fitted on
that concept's pair representations (base = 1, target = 0; the one probe fit,
:func:`ipta.probes.fit_concept_probe`); its logits on N inputs form column k
of ``logits_NK``. The same inputs go through the SAE; ``exp`` of the codes forms ``feats_NF``.
Pearson correlations of every concept column with every feature column give a K x F matrix;
the Hungarian algorithm assigns each concept a distinct feature maximising the total
correlation. Reported: the assigned PCC per concept, their mean, and coverage@0.5, the share of
concepts whose assigned PCC exceeds 0.5.

Pearson on ``exp(s z)`` depends on the scale s of the codes (a penalty that shrinks codes
changes the score of the same feature), so :data:`METRIC_VARIANTS` adds three readings that a
rescaling cannot move in the same way: Pearson on the raw codes (invariant to a positive scale),
Spearman (invariant to any increasing map of each feature), and Pearson on exp of each
feature's standardised code (each feature in its own units). The paper's metric stays the
headline (``mean_pcc``, ``coverage``); the others are reported beside it.

The held-out view (``mean_pcc_heldout``, ``coverage_heldout``): the words are split in two with
no word on both sides (:func:`ipta.probes.word_split`); probes are fitted on one side's
pairs, each concept is assigned its feature (Hungarian, on the paper's correlation) on that
side's words, and the assigned correlations are reported on the other side's words, so neither
the probe nor the choice among F features has seen the words it is scored on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def mse(x_ND: np.ndarray, xhat_ND: np.ndarray) -> float:
    """Mean squared error per element: (1/(N D)) sum_n ||x_n - xhat_n||^2."""
    x, xhat = np.asarray(x_ND, np.float64), np.asarray(xhat_ND, np.float64)
    return float(((x - xhat) ** 2).mean())


def fvu(x_ND: np.ndarray, xhat_ND: np.ndarray) -> float:
    """Fraction of variance unexplained: sum ||x - xhat||^2 / sum ||x - mean(x)||^2."""
    x, xhat = np.asarray(x_ND, np.float64), np.asarray(xhat_ND, np.float64)
    total = ((x - x.mean(0)) ** 2).sum()
    return float(((x - xhat) ** 2).sum() / total) if total > 0 else float("nan")


def l0(codes_NF: np.ndarray) -> float:
    """Mean number of non-zero codes per sample."""
    return float((np.asarray(codes_NF) != 0).sum(1).mean())


def code_scale(codes_NF: np.ndarray, q: float = 99.0) -> float:
    """The ``q``-th percentile of the non-zero codes (0 when none is): how large codes are,
    which the paper's exp reading of the metric is not blind to."""
    active = np.asarray(codes_NF)[np.asarray(codes_NF) != 0]
    return float(np.percentile(active, q)) if active.size else 0.0


def dead_fraction(codes_NF: np.ndarray) -> float:
    """Share of features that are zero on every sample."""
    return float(np.mean(~(np.asarray(codes_NF) != 0).any(0)))


def pearson_matrix(a_NK: np.ndarray, b_NF: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of ``a`` with every column of ``b``: [K, F].

    A constant column (e.g. a feature silent on all inputs) has no defined correlation; it gets 0.
    """
    a = np.asarray(a_NK, np.float64)
    b = np.asarray(b_NF, np.float64)
    a = a - a.mean(0)
    b = b - b.mean(0)
    na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (a.T @ b) / np.outer(na, nb)
    return np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass(frozen=True)
class ConceptMatch:
    """Result of the appendix H.2 metric for one SAE."""

    pcc_K: np.ndarray
    """Assigned Pearson correlation per concept."""
    feature_K: np.ndarray
    """The SAE feature assigned to each concept."""
    threshold: float

    @property
    def mean_pcc(self) -> float:
        return float(self.pcc_K.mean())

    @property
    def coverage(self) -> float:
        """Share of concepts whose assigned PCC exceeds the threshold (coverage@0.5)."""
        return float((self.pcc_K > self.threshold).mean())


METRIC_VARIANTS = {
    "paper": "Pearson(logit, exp(code)), appendix H.2 (the headline)",
    "raw": "Pearson(logit, code)",
    "spearman": "Spearman(logit, code): ranks, blind to any increasing rescaling",
    "exp_std": "Pearson(logit, exp(code standardised per feature))",
}
"""The concept metric's readings: name -> what is correlated with the probe logits."""


def _exp(z: np.ndarray) -> np.ndarray:
    """exp in float64, clipped at 700 (exp overflows beyond ~709)."""
    return np.exp(np.minimum(z, 700.0))


def rank_columns(a_NF: np.ndarray) -> np.ndarray:
    """Ranks 1..N within each column, tied values sharing the mean of their ranks: the values of
    ``scipy.stats.rankdata(a, axis=0)``, in float64.

    A matrix of sparse codes is mostly zeros, one tie per column; only its non-zero entries are
    sorted here (by column, then value) and the zeros of each column get their shared rank, so
    the Spearman reading of a trained SAE's codes costs a fraction of ``rankdata``'s full
    sort (which a denser matrix still gets). Exact: every rank is a half-integer below 2^53.
    """
    from scipy.stats import rankdata

    a = np.asarray(a_NF, np.float64)
    if a.ndim != 2 or np.isnan(a).any():  # rankdata's NaN columns
        return rankdata(a, axis=0)
    row_M, col_M = np.nonzero(a)
    if len(row_M) > a.size // 4:
        return rankdata(a, axis=0)
    value_M = a[row_M, col_M]
    order = np.lexsort((value_M, col_M))  # by column, then by value
    row_M, col_M, value_M = row_M[order], col_M[order], value_M[order]
    n_F = np.bincount(col_M, minlength=a.shape[1])
    zeros_F = a.shape[0] - n_F
    below_F = np.bincount(col_M[value_M < 0], minlength=a.shape[1])
    start_F = np.concatenate([[0], np.cumsum(n_F)[:-1]])
    within_M = np.arange(len(col_M)) - start_F[col_M]  # place among the column's non-zeros
    place_M = within_M + np.where(value_M > 0, zeros_F[col_M], 0)  # place in the column
    new_M = np.ones(len(col_M), bool)  # a tie group starts: a new column or a new value
    new_M[1:] = (col_M[1:] != col_M[:-1]) | (value_M[1:] != value_M[:-1])
    first_G = np.flatnonzero(new_M)
    size_G = np.diff(first_G, append=len(col_M))
    ranks_NF = np.broadcast_to(below_F + (zeros_F + 1) / 2, a.shape).copy()
    ranks_NF[row_M, col_M] = np.repeat(place_M[first_G] + (size_G + 1) / 2, size_G)
    return ranks_NF


def reading_inputs(logits_NK: np.ndarray, codes_NF: np.ndarray, variant: str = "paper"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(y_NK, feats_NF)``: what the reading ``variant`` of :data:`METRIC_VARIANTS` correlates,
    the probe logits and the transformed codes (both ranked for Spearman), in float64."""
    z_NF = np.asarray(codes_NF, np.float64)
    y_NK = np.asarray(logits_NK, np.float64)
    if variant == "paper":
        return y_NK, _exp(z_NF)
    if variant == "raw":
        return y_NK, z_NF
    if variant == "spearman":
        return rank_columns(y_NK), rank_columns(z_NF)
    if variant == "exp_std":
        sd_F = z_NF.std(0)
        return y_NK, _exp((z_NF - z_NF.mean(0)) / np.where(sd_F > 0, sd_F, 1.0))
    raise ValueError(f"metric variant {variant!r} is not one of {', '.join(METRIC_VARIANTS)}")


def concept_match(logits_NK: np.ndarray, codes_NF: np.ndarray, threshold: float = 0.5,
                  variant: str = "paper") -> ConceptMatch:
    """Hungarian assignment of concepts to features on the correlation ``variant`` of
    :data:`METRIC_VARIANTS` (default: the paper's Pearson(logits, exp(codes)), app. H.2)."""
    return assign(*reading_inputs(logits_NK, codes_NF, variant), threshold=threshold)


def assign(y_NK: np.ndarray, feats_NF: np.ndarray, threshold: float = 0.5) -> ConceptMatch:
    """:func:`concept_match` on a reading's inputs already made by :func:`reading_inputs` (for
    a caller that uses them again: Spearman's ranks cost more than the assignment)."""
    from scipy.optimize import linear_sum_assignment

    r_KF = pearson_matrix(y_NK, feats_NF)
    rows, cols = linear_sum_assignment(r_KF, maximize=True)
    pcc_K = np.zeros(r_KF.shape[0])
    feature_K = np.full(r_KF.shape[0], -1)
    pcc_K[rows], feature_K[rows] = r_KF[rows, cols], cols
    return ConceptMatch(pcc_K=pcc_K, feature_K=feature_K, threshold=threshold)


def coverage_implied_rows(coverages: Mapping[str, float], n_max: int = 40
                          ) -> dict[int, dict[str, float]]:
    """Row counts n <= ``n_max`` for which every reported coverage is an integer share m / n.

    For each such n, the implied count m per column. Used to check how many rows the paper's
    coverage@0.5 values were computed over.
    """
    found = {}
    for n in range(1, n_max + 1):
        counts = {k: round(v * n) for k, v in coverages.items()}
        if all(abs(counts[k] / n - v) < 5e-4 for k, v in coverages.items()):
            found[n] = counts
    return found


def count_above(values: Sequence[float], threshold: float = 0.5) -> int:
    """How many values exceed ``threshold``."""
    return int(sum(v > threshold for v in values))


@dataclass(frozen=True)
class HeldOut:
    """The held-out view's inputs: logits of probes fitted on the ``fit_N`` rows' pairs only,
    on every row, and which rows assign features (``fit_N``) and which score them (``score_N``)."""

    logits_NK: np.ndarray
    fit_N: np.ndarray
    score_N: np.ndarray


def heldout_match(codes_NF: np.ndarray, heldout: HeldOut, threshold: float = 0.5
                  ) -> ConceptMatch:
    """Features assigned on the fit rows (paper's correlation), correlations on the score rows."""
    fit, score = heldout.fit_N, heldout.score_N
    assigned = concept_match(heldout.logits_NK[fit], codes_NF[fit], threshold)
    feats_NK = _exp(np.asarray(codes_NF, np.float64)[score][:, assigned.feature_K])
    y_NK = np.asarray(heldout.logits_NK, np.float64)[score]
    r_KK = pearson_matrix(y_NK, feats_NK)
    return ConceptMatch(np.diag(r_KK).copy(), assigned.feature_K, threshold)


def score_codes(codes_NF: np.ndarray, logits_NK: np.ndarray, threshold: float = 0.5,
                heldout: HeldOut | None = None,
                readings: Sequence[str] = tuple(METRIC_VARIANTS)) -> dict[str, Any]:
    """The concept metric of any codes on the pair words, in every reading: ``mean_pcc``,
    ``coverage``, ``pcc_K`` and ``feature_K`` (the paper's, always), then ``mean_pcc_<v>`` and
    ``coverage_<v>`` for the other variants of :data:`METRIC_VARIANTS` named in ``readings``,
    and the held-out view when ``heldout`` is given."""
    unknown = [r for r in readings if r not in METRIC_VARIANTS]
    if unknown:
        raise ValueError(f"metric readings {unknown} are not among {', '.join(METRIC_VARIANTS)}")
    match = concept_match(logits_NK, codes_NF, threshold)
    out: dict[str, Any] = {"mean_pcc": match.mean_pcc, "coverage": match.coverage,
                           "pcc_K": match.pcc_K.tolist(), "feature_K": match.feature_K.tolist()}
    for variant in METRIC_VARIANTS:
        if variant != "paper" and variant in readings:
            m = concept_match(logits_NK, codes_NF, threshold, variant)
            out[f"mean_pcc_{variant}"], out[f"coverage_{variant}"] = m.mean_pcc, m.coverage
    if heldout is not None:
        m = heldout_match(codes_NF, heldout, threshold)
        out["mean_pcc_heldout"], out["coverage_heldout"] = m.mean_pcc, m.coverage
    return out


def float_tensor(x_ND: np.ndarray, device: Any = "cpu") -> Any:
    """``x_ND`` as a float32 torch tensor, copied first when NumPy marks it read-only (joblib
    hands a worker its large arrays, the concept data's, as read-only maps, and torch's warning
    about such arrays would reach the page through the worker's stderr)."""
    import torch

    x = np.asarray(x_ND, np.float32)
    return torch.from_numpy(x if x.flags.writeable else x.copy()).to(device)


def evaluate(sae, val_ND: np.ndarray, pairs_ND: np.ndarray, logits_NK: np.ndarray,
             threshold: float = 0.5, heldout: HeldOut | None = None,
             readings: Sequence[str] = tuple(METRIC_VARIANTS)) -> dict[str, Any]:
    """Every metric above for one SAE: reconstruction and sparsity on held-out tokens (``val_*``)
    and on the word-pair representations (``pairs_*``), and the H.2 concept metric on the pair
    words in the ``readings`` asked for (:func:`score_codes`)."""
    import torch

    device = sae.W_dec_FD.device
    out: dict[str, Any] = {}
    with torch.no_grad():
        for name, x_ND in (("val", val_ND), ("pairs", pairs_ND)):
            codes = sae.encode(float_tensor(x_ND, device))
            xhat = sae.decode(codes).cpu().numpy()
            codes = codes.cpu().numpy()
            out.update({f"{name}_mse": mse(x_ND, xhat), f"{name}_fvu": fvu(x_ND, xhat),
                        f"{name}_l0": l0(codes), f"{name}_dead": dead_fraction(codes),
                        f"{name}_code_p99": code_scale(codes)})
    out.update(score_codes(codes, logits_NK, threshold, heldout, readings))
    return out
