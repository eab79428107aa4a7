"""Concept probes and concept directions (paper section 6, Figure 3, appendices G.2 and J).

Numpy and scikit-learn only: no model, no cache. :func:`fit_concept_probe` is the one place where
a concept probe is fitted, for every chapter (probing, the SAE metric, the theory's Corollary 4.3).

Corollaries 4.2 and 4.3 say that, if the representation is a linear transform of the latent
concept posteriors, the mean representation difference over counterfactual pairs (a concept
direction a_i) and the weight w_j of a linear probe for concept j satisfy W^T A ~ I. The paper
shows the 27 x 27 matrix of cos(a_i, w_j).

Two ways to compute it:

- ``paper`` mode, the authors' protocol: A and W fitted on all pairs, ``LogisticRegression(
  C=1e-4, max_iter=500)``. With so strong an L2 penalty the probe weight tends to the difference
  of class means, which is a_i itself, so the diagonal is near 1 largely by construction.
- ``rigorous`` mode, ours: per seed, each concept's pairs are split into train and test; A and W
  are fitted on train pairs only, over a sweep of C; probe accuracy is measured on held-out
  pairs; baselines are A A^T (how alike the directions already are), probes fitted on permuted
  labels (a null), and random unit directions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

PAPER_C = 1e-4
"""The authors' inverse regularisation strength (1e-2 for their 7B/14B DeepSeek models)."""


@dataclass(frozen=True)
class PairReps:
    """Representations of each concept's pairs: ``base[k]`` and ``target[k]`` are [N_k, D]."""

    names: tuple[str, ...]
    base: tuple[np.ndarray, ...]
    target: tuple[np.ndarray, ...]


def _unit_rows(M_KD: np.ndarray) -> np.ndarray:
    return M_KD / np.maximum(np.linalg.norm(M_KD, axis=1, keepdims=True), 1e-12)


def concept_directions(base: tuple[np.ndarray, ...], target: tuple[np.ndarray, ...]) -> np.ndarray:
    """Rows a_i = normalised mean over pairs of f(base) - f(target) (Corollary 4.2): [K, D]."""
    return _unit_rows(np.stack([(b - t).mean(0) for b, t in zip(base, target)]))


@dataclass(frozen=True)
class ConceptProbe:
    """A fitted concept probe: logit(x) = coef . x + intercept, positive for the base word."""

    coef_D: np.ndarray
    intercept: float
    converged: bool
    """False when lbfgs stopped at ``max_iter`` before its tolerance."""

    @property
    def direction_D(self) -> np.ndarray:
        """The unit weight w = coef / ||coef|| (the paper's w_i)."""
        return self.coef_D / max(np.linalg.norm(self.coef_D), 1e-12)

    def logits(self, X_ND: np.ndarray) -> np.ndarray:
        return X_ND @ self.coef_D + self.intercept

    def accuracy(self, base_ND: np.ndarray, target_ND: np.ndarray) -> float:
        """Share of words classified right (base: logit > 0); NaN when there are none."""
        if len(base_ND) == 0:
            return float("nan")
        return float(np.r_[self.logits(base_ND) > 0, self.logits(target_ND) <= 0].mean())


def fit_concept_probe(X_ND: np.ndarray, is_base_N: np.ndarray, C: float, max_iter: int = 500,
                      sample_weight_N: np.ndarray | None = None) -> ConceptProbe:
    """The concept-probe protocol of the authors' code (appendix J): scikit-learn's
    ``LogisticRegression(C, max_iter)`` (lbfgs, L2) on representations labelled 1 for a base
    word and 0 for its target. ``sample_weight_N`` allows soft labels (each input given twice,
    once per label, weighted by its probability), as the theory chapter's Corollary 4.3 uses.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        # One BLAS thread: these fits are small, and with several threads on a busy 2-core
        # machine the threads' synchronisation made each fit ~15x slower in our measurements.
        with threadpool_limits(1):
            clf = LogisticRegression(C=C, max_iter=max_iter).fit(
                X_ND, np.asarray(is_base_N, dtype=float), sample_weight=sample_weight_N)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return ConceptProbe(clf.coef_[0], float(clf.intercept_[0]), converged)


def fit_pair_probe(base_ND: np.ndarray, target_ND: np.ndarray, C: float,
                   max_iter: int = 500) -> ConceptProbe:
    """:func:`fit_concept_probe` on one concept's pairs: base words first, then targets."""
    X_ND = np.concatenate([base_ND, target_ND])
    return fit_concept_probe(X_ND, np.r_[np.ones(len(base_ND)), np.zeros(len(target_ND))], C,
                             max_iter)


def frobenius_gap(A_KD: np.ndarray, W_KD: np.ndarray) -> float:
    """||A W - P_S||_F with A = [a_1..a_K] as columns (D x K) and W with rows w_j (K x D).

    P_S = A (A^T A)^-1 A^T projects onto the span of the concept directions; A W = P_S exactly
    when W is A's pseudo-inverse, i.e. W^T A = I on that span (Corollary 4.3).
    """
    A_DK = A_KD.T
    P_DD = A_DK @ np.linalg.pinv(A_DK.T @ A_DK) @ A_DK.T
    return float(np.linalg.norm(A_DK @ W_KD - P_DD))


def summarize(M_KK: np.ndarray) -> dict[str, float]:
    """Mean diagonal, mean |off-diagonal| and share of rows whose largest entry is the diagonal."""
    K = len(M_KK)
    off = ~np.eye(K, dtype=bool)
    return {"diag": float(np.diag(M_KK).mean()), "offdiag_abs": float(np.abs(M_KK[off]).mean()),
            "diag_is_row_max": float((M_KK.argmax(1) == np.arange(K)).mean())}


def paper_mode(reps: PairReps, C: float = PAPER_C, max_iter: int = 500) -> dict[str, object]:
    """The authors' protocol: A and W on all pairs; M[i, j] = cos(a_i, w_j) (Figure 3)."""
    A_KD = concept_directions(reps.base, reps.target)
    fits = [fit_pair_probe(b, t, C, max_iter) for b, t in zip(reps.base, reps.target)]
    W_KD = np.stack([f.direction_D for f in fits])
    M_KK = A_KD @ W_KD.T
    return {"M": M_KK, "A": A_KD, "W": W_KD, "C": C, "frobenius_gap": frobenius_gap(A_KD, W_KD),
            "converged": float(np.mean([f.converged for f in fits])), **summarize(M_KK)}


def split_pairs(n: int, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Indices (train, test) of n pairs; at least one pair on each side when n >= 2."""
    order = rng.permutation(n)
    n_test = min(max(1, int(round(test_fraction * n))), n - 1) if n >= 2 else 0
    return order[n_test:], order[:n_test]


def rigorous_seed(reps: PairReps, Cs: tuple[float, ...], seed: int, test_fraction: float = 0.3,
                  max_iter: int = 500) -> dict[str, object]:
    """One split: A on train pairs; per C, W on train pairs, held-out accuracy, and the baselines."""
    rng = np.random.default_rng(seed)
    splits = [split_pairs(len(b), test_fraction, rng) for b in reps.base]
    train_b = tuple(b[tr] for b, (tr, _) in zip(reps.base, splits))
    train_t = tuple(t[tr] for t, (tr, _) in zip(reps.target, splits))
    A_KD = concept_directions(train_b, train_t)
    K, D = A_KD.shape
    out = {"A_At": A_KD @ A_KD.T, "random": A_KD @ _unit_rows(rng.standard_normal((K, D))).T,
           "M": {}, "null": {}, "accuracy": {}, "frobenius_gap": {}}
    for C in Cs:
        fits = [fit_pair_probe(b, t, C, max_iter) for b, t in zip(train_b, train_t)]
        W_KD = np.stack([f.direction_D for f in fits])
        out["M"][C] = A_KD @ W_KD.T
        out["frobenius_gap"][C] = frobenius_gap(A_KD, W_KD)
        out["accuracy"][C] = np.array([f.accuracy(b[te], t[te]) for f, b, t, (_, te)
                                       in zip(fits, reps.base, reps.target, splits)])
        out["null"][C] = A_KD @ np.stack([_null_probe(b, t, C, max_iter, rng)
                                          for b, t in zip(train_b, train_t)]).T
    return out


def _null_probe(base_ND: np.ndarray, target_ND: np.ndarray, C: float, max_iter: int,
                rng: np.random.Generator) -> np.ndarray:
    """A probe fitted after shuffling which words are labelled base and which target."""
    X_ND = np.concatenate([base_ND, target_ND])
    perm = rng.permutation(len(X_ND))
    n = len(base_ND)
    return fit_pair_probe(X_ND[perm[:n]], X_ND[perm[n:]], C, max_iter).direction_D


def rigorous_mode(reps: PairReps, Cs: tuple[float, ...], seeds: tuple[int, ...],
                  test_fraction: float = 0.3, max_iter: int = 500,
                  ) -> tuple[list[dict[str, object]], dict[float, np.ndarray]]:
    """Summary rows (one per seed, matrix kind and C) and the seed-mean cos(a_i, w_j) per C."""
    rows, mean_M = [], {C: 0.0 for C in Cs}
    for seed in seeds:
        res = rigorous_seed(reps, Cs, seed, test_fraction, max_iter)
        for C in Cs:
            mean_M[C] = mean_M[C] + res["M"][C] / len(seeds)
        rows.append({"seed": seed, "kind": "A A^T", "C": np.nan, **summarize(res["A_At"])})
        rows.append({"seed": seed, "kind": "random W", "C": np.nan, **summarize(res["random"])})
        for C in Cs:
            rows.append({"seed": seed, "kind": "probe", "C": C, **summarize(res["M"][C]),
                         "frobenius_gap": res["frobenius_gap"][C],
                         "heldout_accuracy": float(np.nanmean(res["accuracy"][C]))})
            rows.append({"seed": seed, "kind": "permuted-label null", "C": C,
                         **summarize(res["null"][C])})
    return rows, mean_M
