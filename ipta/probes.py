"""The one concept probe every chapter fits, and the word split that keeps its words apart.

NumPy and SciPy only: no model, no cache. :func:`fit_concept_probe` is the one place a
concept probe is fitted in ipta: the probing chapter's Figure 3 (appendix J), the SAE chapter's
concept metric (appendix H.2) and the theory chapter's Corollary 4.3 check all call it, so it
lives below every chapter package. :func:`word_split` splits word pairs so that no word is on
both sides (the probing chapter's rigorous mode and the SAE metric's held-out reading).
"""

from __future__ import annotations

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


def logistic_regression(X_ND: np.ndarray, y_N: np.ndarray, C: float, max_iter: int = 100,
                        sample_weight_N: np.ndarray | None = None) -> ConceptProbe:
    """L2-regularised logistic regression of labels ``y_N`` in {0, 1} on ``X_ND``: the problem
    and the solver of scikit-learn's ``LogisticRegression(C=C, max_iter=max_iter)`` (lbfgs).

    Minimises (1/S) sum_n s_n [log(1 + e^{r_n}) - y_n r_n] + ||coef||^2 / (2 C S), with
    r = X coef + intercept, sample weights s (1 by default) and S their sum, the intercept not
    penalised, by scipy's L-BFGS-B from zero with scikit-learn 1.9's settings (gtol 1e-4, ftol
    64 eps, 50 line-search steps), in X's precision as there (float32 data: products and the
    start in float32, each sample's loss computed in float64 and rounded). That is
    scikit-learn's fit without its per-call input checks, which were half the time of the
    simulations' 19,000 small probes; ``tests/test_probes.py`` holds the two to the same
    coefficients on random problems (1e-9 in float64, float32 rounding in float32).
    ``converged`` is False where scikit-learn would warn.
    """
    from scipy import optimize
    from scipy.special import expit

    X_ND = np.asarray(X_ND)
    X_ND = X_ND if X_ND.dtype in (np.float32, np.float64) else X_ND.astype(np.float64)
    dtype = X_ND.dtype
    y_N = np.asarray(y_N, dtype)
    if y_N.shape != (len(X_ND),):
        raise ValueError(f"labels of shape {y_N.shape} do not match {len(X_ND)} samples")
    classes = np.unique(y_N)
    if len(classes) != 2 or not np.isin(classes, (0, 1)).all():
        raise ValueError(f"logistic regression needs labels of both classes 0 and 1; got "
                         f"{classes.tolist()}")
    s_N = None if sample_weight_N is None else np.asarray(sample_weight_N, dtype)
    s_sum = len(X_ND) if s_N is None else float(s_N.sum())
    l2 = 1.0 / (C * s_sum)
    d = X_ND.shape[1]
    y64_N, s64_N = y_N.astype(np.float64), None if s_N is None else s_N.astype(np.float64)

    def loss_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        coef_D = w[:d]
        raw_N = (X_ND @ coef_D.astype(dtype) + dtype.type(w[d])).astype(np.float64)
        # Each sample's loss and gradient in float64, then rounded to X's precision: float32
        # values computed in float32 are noisy enough to stall the line search at small C.
        loss_N = np.logaddexp(0, raw_N) - y64_N * raw_N
        g_N = expit(raw_N) - y64_N
        if s64_N is not None:
            loss_N, g_N = loss_N * s64_N, g_N * s64_N
        loss_N, g_N = loss_N.astype(dtype), g_N.astype(dtype)
        g_N /= dtype.type(s_sum)
        grad = np.empty(d + 1)
        grad[:d] = X_ND.T @ g_N + l2 * coef_D
        grad[d] = g_N.sum()
        return float(loss_N.sum() / s_sum) + float(0.5 * l2 * (coef_D @ coef_D)), grad

    # Started from zeros in X's precision, as scikit-learn starts: SciPy keeps the start's
    # dtype for the points it evaluates, so a float64 start takes another path on float32 data.
    res = optimize.minimize(loss_and_grad, np.zeros(d + 1, dtype), method="L-BFGS-B", jac=True,
                            options={"maxiter": max_iter, "maxls": 50, "gtol": 1e-4,
                                     "ftol": 64 * np.finfo(float).eps})
    # Coefficients in X's precision, as scikit-learn keeps them: float32 logits of float32 data
    # (float64 ones would round differently, and every cache key holding them would change).
    w = res.x.astype(dtype)
    return ConceptProbe(w[:d], float(w[d]), bool(res.status == 0))


def fit_concept_probe(X_ND: np.ndarray, is_base_N: np.ndarray, C: float, max_iter: int = 500,
                      sample_weight_N: np.ndarray | None = None) -> ConceptProbe:
    """The concept-probe protocol of the authors' code (appendix J): scikit-learn's
    ``LogisticRegression(C, max_iter)`` (lbfgs, L2; :func:`logistic_regression`) on
    representations labelled 1 for a base word and 0 for its target. ``sample_weight_N``
    allows soft labels (each input given twice, once per label, weighted by its probability),
    as the theory chapter's Corollary 4.3 uses.
    """
    from ipta.parallel import one_blas_thread

    with one_blas_thread():
        return logistic_regression(X_ND, is_base_N, C, max_iter, sample_weight_N)


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
