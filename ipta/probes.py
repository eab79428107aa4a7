"""The one concept probe every chapter fits, and the word split that keeps its words apart.

Numpy and scikit-learn only: no model, no cache. :func:`fit_concept_probe` is the one place a
concept probe is fitted in ipta: the probing chapter's Figure 3 (appendix J), the SAE chapter's
concept metric (appendix H.2) and the theory chapter's Corollary 4.3 check all call it, so it
lives below every chapter package. :func:`word_split` splits word pairs so that no word is on
both sides (the probing chapter's rigorous mode and the SAE metric's held-out reading).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

PAPER_C = 1e-4
"""The authors' inverse regularisation strength (1e-2 for their 7B/14B DeepSeek models)."""


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


def distinct_pairs(words: tuple[tuple[str, str], ...]) -> np.ndarray:
    """Indices of each concept's pairs kept by the rigorous mode: first occurrences of distinct
    pairs, identical (base == target) pairs dropped."""
    seen, keep = set(), []
    for i, pair in enumerate(words):
        if pair[0] != pair[1] and pair not in seen:
            seen.add(pair)
            keep.append(i)
    return np.array(keep, dtype=int)


def word_split(words: tuple[tuple[tuple[str, str], ...], ...], test_fraction: float,
               rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per concept (``words[k]``: its (base, target) pairs), indices (train, test) into its
    pairs such that no word is on both sides.

    Words linked by a pair (in any concept) form connected groups; whole groups go to the test
    side, in random order, until it holds ``test_fraction`` of all kept pairs. Every kept pair
    thus lies wholly on one side; duplicate and identical pairs are dropped first."""
    kept = [distinct_pairs(w) for w in words]
    parent: dict[str, str] = {}

    def root(word: str) -> str:
        while parent.setdefault(word, word) != word:
            parent[word] = parent[parent[word]]
            word = parent[word]
        return word

    for pairs, keep in zip(words, kept):
        for i in keep:
            parent[root(pairs[i][0])] = root(pairs[i][1])
    pairs_per_group: dict[str, int] = {}
    for pairs, keep in zip(words, kept):
        for i in keep:
            pairs_per_group[root(pairs[i][0])] = pairs_per_group.get(root(pairs[i][0]), 0) + 1
    groups = sorted(pairs_per_group)
    budget, test_groups = test_fraction * sum(pairs_per_group.values()), set()
    for g in (groups[i] for i in rng.permutation(len(groups))):
        if sum(pairs_per_group[t] for t in test_groups) >= budget:
            break
        test_groups.add(g)
    splits = []
    for pairs, keep in zip(words, kept):
        is_test = np.array([root(pairs[i][0]) in test_groups for i in keep], dtype=bool)
        splits.append((keep[~is_test], keep[is_test]))
    return splits
