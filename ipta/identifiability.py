"""Numerical checks of Theorem 3.1 and Corollaries 4.2 / 4.3 where the latents are known.

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
from sklearn.linear_model import LogisticRegression

from ipta.cache import get_or_compute
from ipta.nexttoken import optimal_logit_ratios_XY, train_next_token
from ipta.theory import (Enumeration, LatentModel, TheoryConfig, all_configs, enumerate_model,
                         invertibility_error_X, make_model)

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
    probes = []
    for k in range(n_concepts):
        p1_X = post_XZ @ z_ZK[:, k]
        labels = np.r_[np.ones(len(f_XD)), np.zeros(len(f_XD))]
        weights = np.r_[w_X * p1_X, w_X * (1 - p1_X)]
        clf = LogisticRegression(C=C, max_iter=2000)
        clf.fit(feats, labels, sample_weight=weights * len(f_XD))
        probes.append(clf.coef_[0])
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


def _compute_sweep(cfg: TheoryConfig, progress: bool) -> tuple[dict, dict]:
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


def run_sweep(cfg: TheoryConfig, progress: bool = True) -> tuple[dict, dict]:
    """All settings (graph x token noise x context noise) of the chapter, trained together and
    checked; cached on disk by the config, so re-running the notebook is instant."""
    return get_or_compute("theory_sweep", cfg.to_dict(), lambda: _compute_sweep(cfg, progress))


# --- Tables and figures of the chapter (plain matplotlib; the notebook only calls these) ---

FEATURE_LABELS = {"log_posterior": "log p(z|x)", "posterior": "p(z|x)",
                  "mode_onehot": "one-hot mode"}


def r2_table(arrays: dict, key: str = "r2_trained") -> "pandas.DataFrame":
    """Held-out R^2 of f ~ A u + b per (token noise, context noise): mean +- sd over graphs."""
    import pandas as pd

    frame = pd.DataFrame({"token noise": arrays["token_noise"],
                          "context noise": arrays["context_noise"], "eps": arrays["eps"],
                          "KL gap": arrays["kl"],
                          **{FEATURE_LABELS[f]: arrays[key][:, i]
                             for i, f in enumerate(FEATURES)}})
    groups = frame.groupby(["token noise", "context noise"], sort=False)
    table = groups.mean()
    for col in FEATURE_LABELS.values():
        sd = groups[col].std().fillna(0)
        table[col] = [f"{m:.3f} ± {s:.3f}" for m, s in zip(table[col], sd)]
    table["eps"] = table["eps"].map("{:.4f}".format)
    table["KL gap"] = table["KL gap"].map("{:.1e}".format)
    return table.rename(columns={"eps": "E[eps(x)]", "KL gap": "KL to optimum"})


def plot_r2(arrays: dict):
    """R^2 against the expected invertibility error, one panel per token noise: solid markers
    for the trained model, open ones for the exact optimum; one point per graph."""
    import matplotlib.pyplot as plt

    noises = np.unique(arrays["token_noise"])[::-1]
    fig, axes = plt.subplots(1, len(noises), figsize=(5 * len(noises), 3.8), sharey=True,
                             squeeze=False)
    for ax, t in zip(axes[0], noises):
        sel = arrays["token_noise"] == t
        for i, f in enumerate(FEATURES):
            c = f"C{i}"
            ax.scatter(arrays["eps"][sel], arrays["r2_trained"][sel, i], color=c, s=18,
                       label=f"{FEATURE_LABELS[f]} (trained)")
            ax.scatter(arrays["eps"][sel], arrays["r2_exact"][sel, i], facecolor="none",
                       edgecolor=c, s=30, label=f"{FEATURE_LABELS[f]} (exact optimum)")
        ax.set(xscale="log", xlabel="expected invertibility error E[eps(x)]",
               title=f"token noise {t:g}", ylim=(-0.5, 1.02))
        ax.axhline(1, color="grey", lw=0.5)
    axes[0, 0].set_ylabel("held-out R² of f ≈ A u(x) + b")
    axes[0, -1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def plot_diversity(arrays: dict, n_configs: int):
    """Rank and condition number of the two diversity matrices along the knob."""
    import matplotlib.pyplot as plt

    fig, (ax_r, ax_c) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, marker in (("token", "s"), ("context", "o")):
        ax_r.scatter(arrays["eps"], arrays[f"{name}_rank"], marker=marker, label=name)
        ax_c.scatter(arrays["eps"], arrays[f"{name}_cond"], marker=marker, label=name)
    ax_r.axhline(n_configs, color="grey", ls="--", label="|Z| (needed)")
    ax_r.set(xscale="log", xlabel="E[eps(x)]", ylabel="numerical rank")
    ax_c.set(xscale="log", yscale="log", xlabel="E[eps(x)]", ylabel="condition number")
    ax_r.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_cosines(arrays: dict, settings: dict[str, np.ndarray]):
    """Histograms of pair-difference cosines, same concept vs different concepts, for a few
    settings (each a boolean mask over the sweep's rows)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(settings), figsize=(4.2 * len(settings), 3.4), sharey=True)
    bins = np.linspace(-1, 1, 41)
    for ax, (title, mask) in zip(np.atleast_1d(axes), settings.items()):
        ax.hist(arrays["cos_cross"][mask].ravel(), bins, density=True, alpha=0.5,
                label="different concepts")
        ax.hist(arrays["cos_same"][mask].ravel(), bins, density=True, alpha=0.5,
                label="same concept")
        ax.set(title=title, xlabel="cosine of f(x) - f(x') between pairs")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_probe_heatmaps(arrays: dict, rows: dict[str, int]):
    """cos(concept direction a_k, probe w_j) for chosen sweep rows: both directions from the
    theorem's fitted A and from mean pair differences (the paper's Figure 3 recipe)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(2, len(rows), figsize=(3.4 * len(rows), 6.2), squeeze=False)
    for j, (title, r) in enumerate(rows.items()):
        for i, (key, label) in enumerate((("probe_vs_A", "A B_k (theorem)"),
                                          ("probe_vs_pairs", "mean pair difference"))):
            sns.heatmap(arrays[key][r], vmin=-1, vmax=1, cmap="coolwarm", annot=True,
                        fmt=".2f", cbar=False, ax=axes[i, j], annot_kws={"size": 8})
            axes[i, j].set(title=f"{title}\nrows: {label}" if i == 0 else f"rows: {label}",
                           xlabel="probe w_j", ylabel="direction a_k")
    fig.tight_layout()
    return fig
