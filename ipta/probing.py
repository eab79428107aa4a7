"""Linear probes against concept directions in real LMs (paper section 6, Figure 3, apps. G.2, J).

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
from typing import Literal

import numpy as np

from ipta.config import Config, ConfigError, param
from ipta.concepts import CONCEPT_NAMES, SOURCES, ConceptSet

PAPER_C = 1e-4
"""The authors' inverse regularisation strength (1e-2 for their 7B/14B DeepSeek models)."""


@dataclass(frozen=True)
class ProbingConfig(Config):
    """Parameters of the LLM-probing chapter (notebooks/03_llm_probing.py)."""

    models: tuple[str, ...] = param(("smollm2-135m", "gemma3-270m"),
                                    "models: embedded short names, Hugging Face ids or local "
                                    "folders ('tiny:llama' = a random tiny model, for tests)")
    concept_sources: tuple[str, ...] = param(("embedded", "paper"),
                                             "concept sets; 'paper' is skipped with a note when "
                                             "its files cannot be had", choices=SOURCES)
    word_pairs_dir: str | None = param(None, "folder of the paper's 27 word-pair files (else "
                                             "$IPTA_WORD_PAIRS_DIR, else the pinned download)")
    concepts: tuple[str, ...] = param((), "concepts to use (empty = all 27)",
                                      choices=CONCEPT_NAMES)
    layer: int = param(-1, "index into hidden_states (-1 = after the final norm, the paper's)")
    position: Literal["last", "mean"] = param("last", "token read: last sub-token (paper) or mean")
    template: str | None = param(None, "prompt around each word, with '{word}' (None = alone)")
    revision: str | None = param(None, "hub revision of the model(s)")
    modes: tuple[str, ...] = param(("paper", "rigorous"), "which protocols to run",
                                   choices=("paper", "rigorous"))
    C: float = param(PAPER_C, "inverse L2 strength of the probe in paper mode", low=1e-8)
    C_sweep: tuple[float, ...] = param((1e-4, 1e-2, 1.0, 1e2),
                                       "values of C in rigorous mode", low=1e-8)
    seeds: tuple[int, ...] = param((0, 1, 2), "seeds of the train/test splits (rigorous mode)",
                                   low=0)
    test_fraction: float = param(0.3, "share of each concept's pairs held out", low=0.05,
                                 high=0.8)
    max_iter: int = param(500, "lbfgs iterations of the probe (the authors': 500)", low=10)
    device: str = param("auto", "device for the forward passes (auto, cpu, cuda, mps)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = param("auto", "model dtype")
    batch_size: int = param(64, "words per forward pass", low=1)

    PROFILES = {
        "smoke": {"models": ("tiny:llama",), "concept_sources": ("embedded",),
                  "concepts": ("verb-3pSg", "noun-plural", "male-female", "country-capital",
                               "English-French"),
                  "C_sweep": (1e-4, 1.0), "seeds": (0, 1)},
        "paper": {"seeds": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
                  "C_sweep": (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2)},
    }

    def validate(self) -> None:
        if not self.models:
            raise ConfigError("parameter 'models': give at least one model")
        if not self.concept_sources or not self.modes:
            raise ConfigError("parameters 'concept_sources' and 'modes' must not be empty")
        if self.template is not None and "{word}" not in self.template:
            raise ConfigError(f"parameter 'template': {self.template!r} lacks '{{word}}'")
        if self.concepts and len(self.concepts) < 2:
            raise ConfigError("parameter 'concepts': need at least two concepts for a matrix")


@dataclass(frozen=True)
class PairReps:
    """Representations of each concept's pairs: ``base[k]`` and ``target[k]`` are [N_k, D]."""

    names: tuple[str, ...]
    base: tuple[np.ndarray, ...]
    target: tuple[np.ndarray, ...]


def pair_representations(concepts: ConceptSet, model: str, cfg: ProbingConfig,
                         loaded=None, progress: bool = True) -> PairReps:
    """Run every distinct word of the set through the model once (cached) and gather the pairs."""
    from ipta.activations import cached_word_representations

    words = list(dict.fromkeys(w for n in concepts.names for p in concepts.pairs[n] for w in p))
    reps_ND = cached_word_representations(
        model, words, revision=cfg.revision, layer=cfg.layer, position=cfg.position,
        template=cfg.template, device=cfg.device, dtype=cfg.dtype, batch_size=cfg.batch_size,
        progress=progress, loaded=loaded)
    row = {w: i for i, w in enumerate(words)}
    base = tuple(reps_ND[[row[b] for b, _ in concepts.pairs[n]]] for n in concepts.names)
    target = tuple(reps_ND[[row[t] for _, t in concepts.pairs[n]]] for n in concepts.names)
    return PairReps(concepts.names, base, target)


def _unit_rows(M_KD: np.ndarray) -> np.ndarray:
    return M_KD / np.maximum(np.linalg.norm(M_KD, axis=1, keepdims=True), 1e-12)


def concept_directions(base: tuple[np.ndarray, ...], target: tuple[np.ndarray, ...]) -> np.ndarray:
    """Rows a_i = normalised mean over pairs of f(base) - f(target) (Corollary 4.2): [K, D]."""
    return _unit_rows(np.stack([(b - t).mean(0) for b, t in zip(base, target)]))


def fit_probe(base_ND: np.ndarray, target_ND: np.ndarray, C: float, max_iter: int = 500):
    """``(w, converged, classifier)``: the unit weight of ``LogisticRegression(C, max_iter)``
    fitted with base = 1 and target = 0, as the authors do."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    X_ND = np.concatenate([base_ND, target_ND])
    y_N = np.r_[np.ones(len(base_ND)), np.zeros(len(target_ND))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        # One BLAS thread: these fits are small, and with several threads on a busy 2-core
        # machine the threads' synchronisation made each fit ~15x slower in our measurements.
        with threadpool_limits(1):
            clf = LogisticRegression(C=C, max_iter=max_iter).fit(X_ND, y_N)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    coef_D = clf.coef_[0]
    return coef_D / max(np.linalg.norm(coef_D), 1e-12), converged, clf


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
    fits = [fit_probe(b, t, C, max_iter) for b, t in zip(reps.base, reps.target)]
    W_KD = np.stack([w for w, _, _ in fits])
    M_KK = A_KD @ W_KD.T
    return {"M": M_KK, "A": A_KD, "W": W_KD, "C": C, "frobenius_gap": frobenius_gap(A_KD, W_KD),
            "converged": float(np.mean([c for _, c, _ in fits])), **summarize(M_KK)}


def split_pairs(n: int, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Indices (train, test) of n pairs; at least one pair on each side when n >= 2."""
    order = rng.permutation(n)
    n_test = min(max(1, int(round(test_fraction * n))), n - 1) if n >= 2 else 0
    return order[n_test:], order[:n_test]


def _accuracy(clf, base_ND: np.ndarray, target_ND: np.ndarray) -> float:
    if len(base_ND) == 0:
        return float("nan")
    X_ND = np.concatenate([base_ND, target_ND])
    y_N = np.r_[np.ones(len(base_ND)), np.zeros(len(target_ND))]
    return float((clf.predict(X_ND) == y_N).mean())


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
        fits = [fit_probe(b, t, C, max_iter) for b, t in zip(train_b, train_t)]
        W_KD = np.stack([w for w, _, _ in fits])
        out["M"][C] = A_KD @ W_KD.T
        out["frobenius_gap"][C] = frobenius_gap(A_KD, W_KD)
        out["accuracy"][C] = np.array([_accuracy(clf, b[te], t[te]) for (_, _, clf), b, t, (_, te)
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
    return fit_probe(X_ND[perm[:n]], X_ND[perm[n:]], C, max_iter)[0]


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
