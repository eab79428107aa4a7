"""Numerical checks of Theorem 3.1 and Corollaries 4.2 / 4.3 where the latents are known, and
the sweep that runs them over every setting of the theory chapter.

Theorem 3.1, as we read it: under the diversity condition, a next-token model at its optimum
has ``f(x) = A u(x) + b`` with ``u(x) = log p(z|x)`` (the vector over all |Z| configurations),
up to a remainder that vanishes as the invertibility error of Definition 2.1 goes to zero.
We fit A and b by weighted least squares on part of the contexts and score the held-out part,
for u = log p(z|x) and, as reference points, u = p(z|x) and u = one-hot of the posterior mode.
Contexts are weighted by p(x): the theorem is about the data the model is trained on.
"""

from __future__ import annotations

import itertools

import numpy as np

from ipta.latent.dag import all_configs
from ipta.latent.invertibility import invertibility_error_X
from ipta.probing.probes import fit_concept_probe
from ipta.theory.model import Enumeration, LatentModel, enumerate_model, make_model
from ipta.theory.nexttoken import optimal_logit_ratios_XY, train_next_token

FEATURES = ("log_posterior", "posterior", "mode_onehot")
"""The three choices of u(x) compared in the Theorem 3.1 check."""


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


def affine_fit_scores(f_XD: np.ndarray, u_XZ: np.ndarray, w_X: np.ndarray,
                      test_X: np.ndarray) -> dict[str, float]:
    """R^2 and relative error of f ~ A u + b fitted on the contexts outside ``test_X`` (a mask)
    and scored on those in it, both weighted by ``w_X``.

    R^2 = 1 - SS_res / SS_tot around the held-out weighted mean; relative error =
    weighted RMS residual / weighted RMS norm of f (not centred)."""
    A, b = fit_affine(f_XD[~test_X], u_XZ[~test_X], w_X[~test_X])
    f, w = f_XD[test_X], w_X[test_X] / w_X[test_X].sum()
    resid = ((f - (u_XZ[test_X] @ A.T + b)) ** 2).sum(1)
    centred = ((f - w @ f) ** 2).sum(1)
    return {"r2": float(1 - w @ resid / (w @ centred)),
            "rel_err": float(np.sqrt(w @ resid / (w @ (f**2).sum(1))))}


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


def insample_r2(f_XD: np.ndarray, u_XZ: np.ndarray, w_X: np.ndarray) -> float:
    """Weighted R^2 of f ~ A u + b fitted and scored on all contexts (no hold-out)."""
    A, b = fit_affine(f_XD, u_XZ, w_X)
    w = w_X / w_X.sum()
    resid = ((f_XD - u_XZ @ A.T - b) ** 2).sum(1)
    return float(1 - w @ resid / (w @ ((f_XD - w @ f_XD) ** 2).sum(1)))


def setting_checks(f_XD: np.ndarray, model: LatentModel, enum: Enumeration,
                   test_X: np.ndarray) -> dict[str, np.ndarray]:
    """Every check of one trained model: Theorem 3.1 fits (trained f and exact optimum),
    diversity ranks, Corollary 4.2 cosines and Corollary 4.3 probe-direction cosines."""
    w_X, k = enum.p_X, model.n_concepts
    exact_XR = optimal_logit_ratios_XY(enum.pred_XY)
    out: dict[str, list] = {"r2_trained": [], "rel_err_trained": [], "r2_exact": [],
                            "r2_exact_insample": []}
    for kind in FEATURES:
        u = features_XZ(enum.post_XZ, kind)
        trained = affine_fit_scores(f_XD, u, w_X, test_X)
        out["r2_trained"].append(trained["r2"])
        out["rel_err_trained"].append(trained["rel_err"])
        out["r2_exact"].append(affine_fit_scores(exact_XR, u, w_X, test_X)["r2"])
        out["r2_exact_insample"].append(insample_r2(exact_XR, u, w_X))
    res = {name: np.array(v) for name, v in out.items()}
    res["eps"] = np.array(w_X @ invertibility_error_X(enum.post_XZ))
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


def compute_sweep(cfg, progress: bool = True) -> tuple[dict, dict]:
    """All settings (graph x token noise x context noise) of the chapter, trained together and
    checked: ``(arrays, meta)`` with one row per setting. ``cfg``: the theory chapter's Config."""
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
    meta = {"features": list(FEATURES), "n_contexts": len(enums[0].p_X), "n_tokens": n_y,
            "n_configs": 2**cfg.n_concepts, "width": n_y - 1 + cfg.width_extra,
            "edges": [sorted(m.graph.edges) for m in models[::len(settings) // cfg.n_graphs]]}
    return arrays, meta
