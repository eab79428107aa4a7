"""Numerical checks of Theorem 3.1 and Corollaries 4.2 / 4.3 where the latents are known, and
the sweep that runs them over every setting of the theory chapter.

Theorem 3.1, as we read it: under the diversity condition, a next-token model at its optimum
has ``f(x) = A u(x) + b`` with ``u(x) = log p(z|x)`` (the vector over all |Z| configurations),
up to a remainder that vanishes as the invertibility error of Definition 2.1 goes to zero.
We fit A and b by weighted least squares on part of the contexts and score the held-out part,
for u = log p(z|x) and, as reference points, u = p(z|x) and u = one-hot of the posterior mode.
Two weightings of the contexts: p(x) (the data the model is trained on) and uniform (the theorem
is a statement about every context). Near invertibility p(x) sits on few contexts, so each
setting also records the effective sample size 1 / sum w^2 of the weighted fit.

Two scores: the summed multi-output R^2, which changes under a non-orthogonal linear map of f,
and the R^2 after whitening f (its weighted covariance on the fitted contexts set to the
identity), which does not: at the optimum f is only fixed up to an invertible linear map, so
only the whitened score compares the trained f with the exact optimum on equal terms.
"""

from __future__ import annotations

import itertools

import numpy as np

from ipta.latent.dag import all_configs
from ipta.latent.invertibility import invertibility_error_X
from ipta.probes import fit_concept_probe
from ipta.theory.config import Config
from ipta.latent.model import (Enumeration, LatentModel, enumerate_model,
                               exact_logit_ratios_XR, make_model)
from ipta.theory.nexttoken import train_next_token

FEATURES = ("log_posterior", "posterior", "mode_onehot")
"""The three choices of u(x) compared in the Theorem 3.1 check."""

WEIGHTINGS = ("p(x)", "uniform")
"""The two weightings of the contexts in every least-squares fit and score."""


def features_XZ(post_XZ: np.ndarray, kind: str) -> np.ndarray:
    """u(x) of the given kind, one row per context."""
    if kind == "log_posterior":
        return np.log(post_XZ)
    if kind == "posterior":
        return post_XZ
    if kind == "mode_onehot":
        return np.eye(post_XZ.shape[1])[post_XZ.argmax(1)]
    raise ValueError(f"feature {kind!r} is not one of {', '.join(FEATURES)}")


def fit_affine(f_XD: np.ndarray, u_XZ: np.ndarray, w_X: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares f ~ A u + b; returns A (D x Z) and b (D,)."""
    design = np.hstack([u_XZ, np.ones((len(u_XZ), 1))])
    root_w = np.sqrt(w_X / w_X.sum())[:, None]
    coef, *_ = np.linalg.lstsq(root_w * design, root_w * f_XD, rcond=None)
    return coef[:-1].T, coef[-1]


def effective_sample_size(w_X: np.ndarray) -> float:
    """Kish's effective number of samples of a weighting: ``(sum w)^2 / sum w^2``."""
    return float(w_X.sum() ** 2 / (w_X**2).sum())


def whitening(f_XD: np.ndarray, w_X: np.ndarray, rtol: float = 1e-10
              ) -> tuple[np.ndarray, np.ndarray]:
    """Mean m and matrix W with ``(f - m) @ W`` of weighted covariance I (on the directions
    whose variance exceeds ``rtol`` times the largest)."""
    w = w_X / w_X.sum()
    mean = w @ f_XD
    centred = f_XD - mean
    vals, vecs = np.linalg.eigh((w[:, None] * centred).T @ centred)
    keep = vals > rtol * vals.max()
    return mean, vecs[:, keep] / np.sqrt(vals[keep])


def affine_fit_scores(f_XD: np.ndarray, u_XZ: np.ndarray, w_X: np.ndarray,
                      test_X: np.ndarray) -> dict[str, float]:
    """Scores of f ~ A u + b fitted on the contexts outside ``test_X`` (a mask) and scored on
    those in it, both weighted by ``w_X``.

    ``r2``: 1 - SS_res / SS_tot summed over the outputs, around the held-out weighted mean;
    ``r2_white``: the same after whitening f with the fitted contexts' weighted covariance
    (unchanged by any invertible linear map of f); ``rel_err``: weighted RMS residual / weighted
    RMS norm of f (not centred)."""
    train = ~test_X
    mean, white = whitening(f_XD[train], w_X[train])
    w = w_X[test_X] / w_X[test_X].sum()
    out = {}
    for name, target in (("r2", f_XD), ("r2_white", (f_XD - mean) @ white)):
        A, b = fit_affine(target[train], u_XZ[train], w_X[train])
        f = target[test_X]
        resid = ((f - (u_XZ[test_X] @ A.T + b)) ** 2).sum(1)
        out[name] = float(1 - w @ resid / (w @ ((f - w @ f) ** 2).sum(1)))
        if name == "r2":
            out["rel_err"] = float(np.sqrt(w @ resid / (w @ (f**2).sum(1))))
    return out


def context_residuals(f_XD: np.ndarray, u_XZ: np.ndarray) -> np.ndarray:
    """Each context's residual norm under the best affine map f ~ A u + b over all contexts
    (uniform weights), relative to the RMS spread of f: the pointwise reading of the theorem."""
    A, b = fit_affine(f_XD, u_XZ, np.ones(len(f_XD)))
    spread = np.sqrt(((f_XD - f_XD.mean(0)) ** 2).sum(1).mean())
    return np.linalg.norm(f_XD - u_XZ @ A.T - b, axis=1) / spread


def rank_and_condition(m: np.ndarray, n_cols: int | None = None, rtol: float = 1e-9
                       ) -> tuple[int, float]:
    """Numerical rank and condition number (largest over the ``n_cols``-th singular value)."""
    s = np.linalg.svd(m, compute_uv=False)
    k = min(n_cols or m.shape[1], len(s))
    rank = int((s > rtol * s[0]).sum())
    return rank, float(s[0] / s[k - 1]) if s[k - 1] > 0 else float("inf")


def token_diversity_matrix(lik_ZY: np.ndarray, reference: int = -1) -> np.ndarray:
    """The diversity condition's token-side matrix: rows ``log p(y_i|z) - log p(y_0|z)`` for
    every token y_i != y_0; it must have rank |Z| for Theorem 3.1's A to exist."""
    log_YZ = np.log(lik_ZY.T)
    return np.delete(log_YZ - log_YZ[[reference]], reference % len(log_YZ), axis=0)


def context_diversity_matrix(post_XZ: np.ndarray, w_X: np.ndarray) -> np.ndarray:
    """The context-side matrix: log p(z|x) centred and weighted over contexts; the theorem
    needs |Z| contexts whose log-posteriors differ in |Z| independent directions."""
    u = np.log(post_XZ)
    w = w_X / w_X.sum()
    return np.sqrt(w)[:, None] * (u - w @ u)


def concept_pairs(n_concepts: int) -> list[list[tuple[int, int]]]:
    """For each concept k, the configuration pairs (z with z_k = 1, same z with z_k = 0)."""
    z_ZK = all_configs(n_concepts)
    return [[(z, z - 2**k) for z in range(len(z_ZK)) if z_ZK[z, k] == 1]
            for k in range(n_concepts)]


def codeword_contexts(code_ZM: np.ndarray) -> np.ndarray:
    """The context index of each configuration's noise-free code: the clean counterfactuals."""
    return (code_ZM.astype(np.int64) << np.arange(code_ZM.shape[1])).sum(1)


def pair_differences(f_XD: np.ndarray, code_ZM: np.ndarray, n_concepts: int
                     ) -> list[np.ndarray]:
    """Corollary 4.2's representation differences f(x_z) - f(x_z'), one array per concept."""
    ctx_Z = codeword_contexts(code_ZM)
    return [np.stack([f_XD[ctx_Z[a]] - f_XD[ctx_Z[b]] for a, b in pairs])
            for pairs in concept_pairs(n_concepts)]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def pair_cosines(diffs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Cosines between differences of the same concept (Corollary 4.2 says ~1) and of
    different concepts (a baseline)."""
    units = [_unit(d) for d in diffs]
    same = [u @ u.T for u in units]
    same = np.concatenate([s[np.triu_indices(len(s), 1)] for s in same])
    cross = np.concatenate([(a @ b.T).ravel() for a, b in itertools.combinations(units, 2)])
    return same, cross


def concept_directions_from_A(A_DZ: np.ndarray, n_concepts: int) -> np.ndarray:
    """Theory-side concept directions: A times the lifted binary contrast of concept k
    (+1 on configurations with z_k = 1, -1 elsewhere), the B_k [1, -1] of appendix F."""
    sign_ZK = 2.0 * all_configs(n_concepts) - 1
    return (A_DZ @ sign_ZK).T


def concept_probes(f_XD: np.ndarray, post_XZ: np.ndarray, w_X: np.ndarray, n_concepts: int,
                   C: float = 1.0) -> np.ndarray:
    """Corollary 4.3's probes: for each concept, a logistic regression of z_k on f(x), trained on
    the soft labels p(z_k = 1|x) with weights p(x) (each context appears once per label)."""
    z_ZK = all_configs(n_concepts)
    feats = np.vstack([f_XD, f_XD])
    labels = np.r_[np.ones(len(f_XD)), np.zeros(len(f_XD))]
    probes = []
    for k in range(n_concepts):
        p1_X = post_XZ @ z_ZK[:, k]
        weights = np.r_[w_X * p1_X, w_X * (1 - p1_X)]
        probes.append(fit_concept_probe(feats, labels, C, max_iter=2000,
                                        sample_weight_N=weights * len(f_XD)).coef_D)
    return np.stack(probes)


def cosine_matrix(rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    """cos(a_i, b_j): the normalised W^T A of Corollary 4.3 (identity if the corollary holds)."""
    return _unit(rows_a) @ _unit(rows_b).T


def mean_abs_cosine_of_random_directions(dim: int) -> float:
    """E|cos| between two independent uniformly random directions in ``dim`` dimensions:
    Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)), the chance level of an alignment heatmap."""
    from math import exp, lgamma, pi, sqrt

    return exp(lgamma(dim / 2) - lgamma((dim + 1) / 2)) / sqrt(pi)


def insample_r2(f_XD: np.ndarray, u_XZ: np.ndarray, w_X: np.ndarray) -> float:
    """Weighted R^2 of f ~ A u + b fitted and scored on all contexts (no hold-out)."""
    A, b = fit_affine(f_XD, u_XZ, w_X)
    w = w_X / w_X.sum()
    resid = ((f_XD - u_XZ @ A.T - b) ** 2).sum(1)
    return float(1 - w @ resid / (w @ ((f_XD - w @ f_XD) ** 2).sum(1)))


def setting_checks(f_XD: np.ndarray, model: LatentModel, enum: Enumeration,
                   test_X: np.ndarray) -> dict[str, np.ndarray]:
    """Every check of one trained model: Theorem 3.1 fits (trained f and exact optimum, under
    both weightings: arrays indexed [weighting, feature]), effective sample sizes, per-context
    residuals, diversity ranks, Corollary 4.2 cosines and Corollary 4.3 probe-direction cosines."""
    w_X, k = enum.p_X, model.n_concepts
    exact_XR = exact_logit_ratios_XR(enum.pred_XY)
    names = ("r2_trained", "r2_white_trained", "rel_err_trained", "r2_exact", "r2_white_exact",
             "r2_exact_insample")
    out = {name: np.zeros((len(WEIGHTINGS), len(FEATURES))) for name in names}
    resid_FX = np.zeros((len(FEATURES), len(w_X)))
    for j, kind in enumerate(FEATURES):
        u = features_XZ(enum.post_XZ, kind)
        resid_FX[j] = context_residuals(f_XD, u)
        for i, weights in enumerate((w_X, np.ones_like(w_X))):
            trained = affine_fit_scores(f_XD, u, weights, test_X)
            exact = affine_fit_scores(exact_XR, u, weights, test_X)
            out["r2_trained"][i, j], out["r2_white_trained"][i, j] = trained["r2"], trained["r2_white"]
            out["rel_err_trained"][i, j] = trained["rel_err"]
            out["r2_exact"][i, j], out["r2_white_exact"][i, j] = exact["r2"], exact["r2_white"]
            out["r2_exact_insample"][i, j] = insample_r2(exact_XR, u, weights)
    res = dict(out)
    eps_X = invertibility_error_X(enum.post_XZ)
    res["eps_X"], res["resid_FX"] = eps_X, resid_FX
    res["ess_train"] = np.array(effective_sample_size(w_X[~test_X]))
    res["ess_test"] = np.array(effective_sample_size(w_X[test_X]))
    res["n_train"] = np.array((~test_X).sum())
    res["eps"] = np.array(w_X @ eps_X)
    res["token_rank"], res["token_cond"] = map(np.array, rank_and_condition(
        token_diversity_matrix(enum.lik_ZY), 2**k))
    res["context_rank"], res["context_cond"] = map(np.array, rank_and_condition(
        context_diversity_matrix(enum.post_XZ, w_X), 2**k))
    diffs = pair_differences(f_XD, model.code_ZM, k)
    res["cos_same"], res["cos_cross"] = pair_cosines(diffs)
    A_DZ, _ = fit_affine(f_XD, features_XZ(enum.post_XZ, "log_posterior"), w_X)
    probes_KD = concept_probes(f_XD, enum.post_XZ, w_X, k)
    res["probe_vs_A"] = cosine_matrix(concept_directions_from_A(A_DZ, k), probes_KD)
    res["probe_vs_pairs"] = cosine_matrix(np.stack([d.mean(0) for d in diffs]), probes_KD)
    return res


def compute_sweep(cfg: Config, progress: bool = True) -> tuple[dict, dict]:
    """All settings (graph x token noise x context noise) of the chapter, trained together and
    checked: ``(arrays, meta)`` with one row per setting."""
    settings = [(g, t, c) for g in range(cfg.n_graphs) for t in cfg.token_noise
                for c in cfg.context_noise]
    models = [make_model(cfg, g, c, t) for g, t, c in settings]
    enums = [enumerate_model(m) for m in models]
    n_y = enums[0].pred_XY.shape[1]
    trained = train_next_token(np.stack([e.pred_XY for e in enums]),
                               np.stack([e.p_X for e in enums]), n_y - 1 + cfg.width_extra,
                               steps=cfg.steps, lr=cfg.lr, encoder=cfg.encoder,
                               seed=cfg.seed, progress=progress)
    rng = np.random.default_rng([cfg.seed, 1])
    checks = []
    for s, (model, enum) in enumerate(zip(models, enums)):
        test_X = rng.random(len(enum.p_X)) < cfg.test_fraction
        checks.append(setting_checks(trained["f_SXD"][s], model, enum, test_X))
    arrays = {name: np.stack([c[name] for c in checks]) for name in checks[0]}
    arrays.update(graph=np.array([s[0] for s in settings]),
                  token_noise=np.array([s[1] for s in settings]),
                  context_noise=np.array([s[2] for s in settings]),
                  kl=trained["kl_S"], kl_max=trained["kl_max_S"], kl_curve=trained["curve"])
    meta = {"features": list(FEATURES), "weightings": list(WEIGHTINGS), "n_contexts": len(enums[0].p_X), "n_tokens": n_y,
            "n_configs": 2**cfg.n_concepts, "width": n_y - 1 + cfg.width_extra,
            "edges": [sorted(m.graph.edges) for m in models[::len(settings) // cfg.n_graphs]]}
    return arrays, meta
