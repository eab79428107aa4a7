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
  held-out side, so ``M = A_test W_train^T`` involves no pair twice. Beside it: the
  mean-difference estimator ``cos(a_train, a_test)``, which is the score of one particular
  probe (the limit of small C), not a bound on any; the held-out directions' noise ceiling
  (their split-half reliability, corrected to the whole side), the cosine the true direction
  itself would be expected to reach; probes fitted on permuted labels (a null) and random unit
  directions; the same matrix under the causal inner product of the model's unembedding
  (Park, Choe and Veitch 2024), which no change of basis of the representation can move.
  Probe accuracy is measured on the held-out pairs; every fit records whether lbfgs converged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ipta.parallel import parallel_map
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


def _noise_ceiling_K(test_base: tuple[np.ndarray, ...], test_target: tuple[np.ndarray, ...],
                     rng: np.random.Generator) -> np.ndarray:
    """Per concept, the cosine a held-out direction can be expected to reach with the concept's
    true direction: split its held-out pairs in two halves, take the cosine rho of the halves'
    directions, and correct it to the whole side (Spearman-Brown): sqrt(2 rho / (1 + rho)).
    NaN for a concept with fewer than four held-out pairs."""
    out = np.full(len(test_base), np.nan)
    for k, (b, t) in enumerate(zip(test_base, test_target)):
        if len(b) < 4:
            continue
        order = rng.permutation(len(b))
        halves = [order[: len(b) // 2], order[len(b) // 2:]]
        a1, a2 = (_unit_rows((b[h] - t[h]).mean(0)[None])[0] for h in halves)
        rho = max(float(a1 @ a2), 0.0)
        out[k] = np.sqrt(2 * rho / (1 + rho))
    return out


def causal_cosines(A_KD: np.ndarray, W_KD: np.ndarray, cov_DD: np.ndarray) -> np.ndarray:
    """cos(a_i, w_j) under the causal inner product of Park, Choe and Veitch (2024): with
    Cov the covariance of the unembedding vectors, a representation-space direction a is
    measured by a^T Cov a and a probe weight w (which acts on representations like an
    unembedding vector) by w^T Cov^-1 w, so that the cosine a^T w / (|a|_Cov |w|_Cov^-1) does
    not change when the representation is mapped by any invertible M and the unembedding (and
    the probe) by M^-T, which leaves every logit unchanged."""
    cov = np.asarray(cov_DD, np.float64)
    ridge = 1e-9 * np.trace(cov) / len(cov)
    inv_W_DK = np.linalg.solve(cov + ridge * np.eye(len(cov)), W_KD.T)
    norm_a = np.sqrt(np.einsum("kd,de,ke->k", A_KD, cov, A_KD))
    norm_w = np.sqrt(np.einsum("kd,dk->k", W_KD, inv_W_DK))
    return (A_KD @ W_KD.T) / np.outer(norm_a, norm_w)


def causal_gram(A_KD: np.ndarray, B_KD: np.ndarray, cov_DD: np.ndarray) -> np.ndarray:
    """cos(a_i, b_j) between two sets of representation-space directions under the causal
    inner product a^T Cov b (see :func:`causal_cosines`)."""
    norm = lambda X: np.sqrt(np.einsum("kd,de,ke->k", X, cov_DD, X))  # noqa: E731
    return (A_KD @ cov_DD @ B_KD.T) / np.outer(norm(A_KD), norm(B_KD))


def rigorous_seed(reps: PairReps, Cs: tuple[float, ...], seed: int, test_fraction: float = 0.3,
                  max_iter: int = 500, cov_DD: np.ndarray | None = None) -> dict[str, object]:
    """One word split: W on training pairs (per C), A on held-out pairs, and the controls; with
    ``cov_DD`` (the unembedding's covariance) the same matrices under the causal inner
    product too."""
    rng = np.random.default_rng(seed)
    splits = word_split(reps.words, test_fraction, rng)
    side = {name: (tuple(b[idx] for b, idx in zip(reps.base, part)),
                   tuple(t[idx] for t, idx in zip(reps.target, part)))
            for name, part in (("train", [tr for tr, _ in splits]),
                               ("test", [te for _, te in splits]))}
    A_train_KD = _directions_or_nan(*side["train"])
    A_test_KD = _directions_or_nan(*side["test"])
    K, D = A_test_KD.shape
    out = {"estimator_K": np.einsum("kd,kd->k", A_train_KD, A_test_KD),
           "noise_ceiling_K": _noise_ceiling_K(*side["test"], rng),
           "A_At": A_test_KD @ A_train_KD.T,
           "random": A_test_KD @ _unit_rows(rng.standard_normal((K, D))).T,
           "n_train_K": np.array([len(tr) for tr, _ in splits]),
           "n_test_K": np.array([len(te) for _, te in splits]),
           "M": {}, "M_same_pairs": {}, "null": {}, "accuracy": {}, "frobenius_gap": {},
           "converged": {}, "M_causal": {}}
    if cov_DD is not None:
        out["A_At_causal"] = causal_gram(A_test_KD, A_train_KD, cov_DD)
    missing = ConceptProbe(np.full(D, np.nan), np.nan, True)  # no training pairs: no probe
    for C in Cs:
        fits = [fit_pair_probe(b, t, C, max_iter) if len(b) else missing
                for b, t in zip(*side["train"])]
        W_KD = np.stack([f.direction_D for f in fits])
        out["M"][C] = A_test_KD @ W_KD.T
        if cov_DD is not None:
            out["M_causal"][C] = causal_cosines(A_test_KD, W_KD, cov_DD)
        out["M_same_pairs"][C] = A_train_KD @ W_KD.T
        out["frobenius_gap"][C] = frobenius_gap(A_test_KD, W_KD)
        out["converged"][C] = float(np.mean([f.converged for f in fits]))
        out["accuracy"][C] = np.array([f.accuracy(b, t) for f, b, t in zip(fits, *side["test"])])
        out["null"][C] = A_test_KD @ np.stack([_null_probe(b, t, C, max_iter, rng) if len(b)
                                               else missing.direction_D
                                               for b, t in zip(*side["train"])]).T
    return out


def _rigorous_seed(args) -> dict[str, object]:
    """:func:`rigorous_seed` of one argument tuple (a task for a worker process)."""
    return rigorous_seed(*args)


def _null_probe(base_ND: np.ndarray, target_ND: np.ndarray, C: float, max_iter: int,
                rng: np.random.Generator) -> np.ndarray:
    """A probe fitted after shuffling which words are labelled base and which target."""
    X_ND = np.concatenate([base_ND, target_ND])
    perm = rng.permutation(len(X_ND))
    n = len(base_ND)
    return fit_pair_probe(X_ND[perm[:n]], X_ND[perm[n:]], C, max_iter).direction_D


ESTIMATOR = "mean-difference estimator"
"""The kind of row that scores the mean-difference estimator, cos(a_train, a_test)."""
NOISE_CEILING = "noise ceiling"
"""The kind of row that holds the held-out directions' noise ceiling."""


def rigorous_mode(reps: PairReps, Cs: tuple[float, ...], seeds: tuple[int, ...],
                  test_fraction: float = 0.3, max_iter: int = 500,
                  cov_DD: np.ndarray | None = None,
                  ) -> tuple[list[dict[str, object]], dict[str, np.ndarray]]:
    """Summary rows (one per seed, matrix kind and C) and seed means: ``M_<i>`` (held-out
    cos(a_i, w_j) at the i-th C), ``estimator_K``, ``noise_ceiling_K``, ``n_train_K`` and
    ``n_test_K``. With ``cov_DD``, rows of the probes and of the estimator under the causal
    inner product too (``causal`` in their kind)."""
    rows, means = [], {}

    def add(name: str, value: np.ndarray) -> None:
        means[name] = means.get(name, 0.0) + value / len(seeds)

    splits = parallel_map(_rigorous_seed, [(reps, Cs, seed, test_fraction, max_iter, cov_DD)
                                           for seed in seeds])
    for seed, res in zip(seeds, splits):
        for name in ("estimator_K", "noise_ceiling_K", "n_train_K", "n_test_K"):
            add(name, res[name])
        rows.append({"seed": seed, "kind": ESTIMATOR, "C": np.nan, **summarize(res["A_At"])})
        rows.append({"seed": seed, "kind": NOISE_CEILING, "C": np.nan,
                     "diag": float(np.nanmean(res["noise_ceiling_K"]))})
        rows.append({"seed": seed, "kind": "random W", "C": np.nan, **summarize(res["random"])})
        if cov_DD is not None:
            rows.append({"seed": seed, "kind": f"{ESTIMATOR}, causal", "C": np.nan,
                         **summarize(res["A_At_causal"])})
        for i, C in enumerate(Cs):
            add(f"M_{i}", res["M"][C])
            rows.append({"seed": seed, "kind": "probe", "C": C, **summarize(res["M"][C]),
                         "frobenius_gap": res["frobenius_gap"][C],
                         "heldout_accuracy": float(np.nanmean(res["accuracy"][C])),
                         "converged": res["converged"][C],
                         "train_pairs": float(np.median(res["n_train_K"]))})
            rows.append({"seed": seed, "kind": "probe, same pairs", "C": C,
                         **summarize(res["M_same_pairs"][C])})
            rows.append({"seed": seed, "kind": "permuted-label null", "C": C,
                         **summarize(res["null"][C])})
            if cov_DD is not None:
                rows.append({"seed": seed, "kind": "probe, causal", "C": C,
                             **summarize(res["M_causal"][C])})
    return rows, means
