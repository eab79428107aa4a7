"""Concept directions against concept probes (paper section 6, Figure 3, appendices G.2 and J).

Numpy only, on top of the one concept probe of :mod:`ipta.probes`: no model, no cache.

Corollaries 4.2 and 4.3 say that, if the representation is a linear transform of the latent
concept posteriors, the mean representation difference over counterfactual pairs (a concept
direction a_i) and the weight w_j of a linear probe for concept j satisfy W^T A ~ I. The paper
shows the 27 x 27 matrix of cos(a_i, w_j).

Two ways to compute it:

- ``paper`` mode, the authors' protocol: A and W fitted on all pairs, ``LogisticRegression(
  C=1e-4, max_iter=500)``. With so strong an L2 penalty the probe weight tends to the difference
  of class means, which is a_i itself, so the diagonal is near 1 largely by construction.
- ``rigorous`` mode, ours: per seed, the words are split in two (duplicate and identical pairs
  dropped; every pair lies wholly on one side, and no word is on both sides, in any concept).
  The probes W are fitted on the training side over a sweep of C, the directions A on the
  held-out side, so ``M = A_test W_train^T`` involves no pair twice; its ceiling is each
  concept's split-half reliability ``cos(a_train, a_test)``. Probe accuracy is measured on the
  held-out pairs; baselines are probes fitted on permuted labels (a null) and random unit
  directions; every fit records whether lbfgs converged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ipta.probes import PAPER_C, ConceptProbe, fit_pair_probe, word_split

@dataclass(frozen=True)
class PairReps:
    """Representations of each concept's pairs: ``base[k]`` and ``target[k]`` are [N_k, D];
    ``words[k]`` the pairs' (base, target) words, which the rigorous mode splits on."""

    names: tuple[str, ...]
    base: tuple[np.ndarray, ...]
    target: tuple[np.ndarray, ...]
    words: tuple[tuple[tuple[str, str], ...], ...]


def _unit_rows(M_KD: np.ndarray) -> np.ndarray:
    return M_KD / np.maximum(np.linalg.norm(M_KD, axis=1, keepdims=True), 1e-12)


def concept_directions(base: tuple[np.ndarray, ...], target: tuple[np.ndarray, ...]) -> np.ndarray:
    """Rows a_i = normalised mean over pairs of f(base) - f(target) (Corollary 4.2): [K, D]."""
    return _unit_rows(np.stack([(b - t).mean(0) for b, t in zip(base, target)]))


def frobenius_gap(A_KD: np.ndarray, W_KD: np.ndarray) -> float:
    """||A W - P_S||_F with A = [a_1..a_K] as columns (D x K) and W with rows w_j (K x D).

    P_S = A (A^T A)^-1 A^T projects onto the span of the concept directions; A W = P_S exactly
    when W is A's pseudo-inverse, i.e. W^T A = I on that span (Corollary 4.3). Concepts with a
    NaN row (no pairs on one side of a split) are left out.
    """
    exists = ~(np.isnan(A_KD).any(1) | np.isnan(W_KD).any(1))  # concepts with pairs on both sides
    A_DK, W_KD = A_KD[exists].T, W_KD[exists]
    P_DD = A_DK @ np.linalg.pinv(A_DK.T @ A_DK) @ A_DK.T
    return float(np.linalg.norm(A_DK @ W_KD - P_DD))


def summarize(M_KK: np.ndarray) -> dict[str, float]:
    """Mean diagonal, mean |off-diagonal| and share of rows whose largest entry is the diagonal,
    over the rows that exist (a concept with no held-out pair has a NaN row)."""
    rows = ~np.isnan(M_KK).any(1)
    M, idx = M_KK[rows][:, rows], np.flatnonzero(rows)
    off = ~np.eye(len(M), dtype=bool)
    return {"diag": float(np.diag(M).mean()), "offdiag_abs": float(np.abs(M[off]).mean()),
            "diag_is_row_max": float((M_KK[rows].argmax(1) == idx).mean())}


def paper_mode(reps: PairReps, C: float = PAPER_C, max_iter: int = 500) -> dict[str, object]:
    """The authors' protocol: A and W on all pairs; M[i, j] = cos(a_i, w_j) (Figure 3)."""
    A_KD = concept_directions(reps.base, reps.target)
    fits = [fit_pair_probe(b, t, C, max_iter) for b, t in zip(reps.base, reps.target)]
    W_KD = np.stack([f.direction_D for f in fits])
    M_KK = A_KD @ W_KD.T
    return {"M": M_KK, "A": A_KD, "W": W_KD, "C": C, "frobenius_gap": frobenius_gap(A_KD, W_KD),
            "converged": float(np.mean([f.converged for f in fits])), **summarize(M_KK)}


def _directions_or_nan(base: tuple[np.ndarray, ...], target: tuple[np.ndarray, ...]) -> np.ndarray:
    """:func:`concept_directions`, with a NaN row for a concept that has no pairs on this side."""
    D = base[0].shape[1]
    rows = [(b - t).mean(0) if len(b) else np.full(D, np.nan) for b, t in zip(base, target)]
    return _unit_rows(np.stack(rows))


def rigorous_seed(reps: PairReps, Cs: tuple[float, ...], seed: int, test_fraction: float = 0.3,
                  max_iter: int = 500) -> dict[str, object]:
    """One word split: W on training pairs (per C), A on held-out pairs, and the controls."""
    rng = np.random.default_rng(seed)
    splits = word_split(reps.words, test_fraction, rng)
    side = {name: (tuple(b[idx] for b, idx in zip(reps.base, part)),
                   tuple(t[idx] for t, idx in zip(reps.target, part)))
            for name, part in (("train", [tr for tr, _ in splits]),
                               ("test", [te for _, te in splits]))}
    A_train_KD = _directions_or_nan(*side["train"])
    A_test_KD = _directions_or_nan(*side["test"])
    K, D = A_test_KD.shape
    out = {"reliability_K": np.einsum("kd,kd->k", A_train_KD, A_test_KD),
           "A_At": A_test_KD @ A_train_KD.T,
           "random": A_test_KD @ _unit_rows(rng.standard_normal((K, D))).T,
           "n_train_K": np.array([len(tr) for tr, _ in splits]),
           "n_test_K": np.array([len(te) for _, te in splits]),
           "M": {}, "M_same_pairs": {}, "null": {}, "accuracy": {}, "frobenius_gap": {},
           "converged": {}}
    missing = ConceptProbe(np.full(D, np.nan), np.nan, True)  # no training pairs: no probe
    for C in Cs:
        fits = [fit_pair_probe(b, t, C, max_iter) if len(b) else missing
                for b, t in zip(*side["train"])]
        W_KD = np.stack([f.direction_D for f in fits])
        out["M"][C] = A_test_KD @ W_KD.T
        out["M_same_pairs"][C] = A_train_KD @ W_KD.T
        out["frobenius_gap"][C] = frobenius_gap(A_test_KD, W_KD)
        out["converged"][C] = float(np.mean([f.converged for f in fits]))
        out["accuracy"][C] = np.array([f.accuracy(b, t) for f, b, t in zip(fits, *side["test"])])
        out["null"][C] = A_test_KD @ np.stack([_null_probe(b, t, C, max_iter, rng) if len(b)
                                               else missing.direction_D
                                               for b, t in zip(*side["train"])]).T
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
                  ) -> tuple[list[dict[str, object]], dict[str, np.ndarray]]:
    """Summary rows (one per seed, matrix kind and C) and seed means: ``M_<i>`` (held-out
    cos(a_i, w_j) at the i-th C), ``reliability_K``, ``n_train_K`` and ``n_test_K``."""
    rows, means = [], {}

    def add(name: str, value: np.ndarray) -> None:
        means[name] = means.get(name, 0.0) + value / len(seeds)

    for seed in seeds:
        res = rigorous_seed(reps, Cs, seed, test_fraction, max_iter)
        for name in ("reliability_K", "n_train_K", "n_test_K"):
            add(name, res[name])
        rows.append({"seed": seed, "kind": "ceiling (split-half)", "C": np.nan,
                     **summarize(res["A_At"])})
        rows.append({"seed": seed, "kind": "random W", "C": np.nan, **summarize(res["random"])})
        for i, C in enumerate(Cs):
            add(f"M_{i}", res["M"][C])
            rows.append({"seed": seed, "kind": "probe", "C": C, **summarize(res["M"][C]),
                         "frobenius_gap": res["frobenius_gap"][C],
                         "heldout_accuracy": float(np.nanmean(res["accuracy"][C])),
                         "converged": res["converged"][C]})
            rows.append({"seed": seed, "kind": "probe, same pairs", "C": C,
                         **summarize(res["M_same_pairs"][C])})
            rows.append({"seed": seed, "kind": "permuted-label null", "C": C,
                         **summarize(res["null"][C])})
    return rows, means
