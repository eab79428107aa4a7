"""The theory chapter (notebook ``01_theory``): Theorem 3.1 and Corollaries 4.2 / 4.3 checked
on the exactly enumerated model of section 2.

Like every chapter module: :class:`Config` (the parameters), :func:`setup` (validate and show
them), :func:`run` (compute, or read from the cache) returning a :class:`Result`, then the
chapter's tables (``table_*``), figures (``figure_*``) and one-line readings (``reading_*``).
The computation itself lives in :mod:`ipta.theory.checks` and the modules it imports.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ipta.cache import get_or_compute
from ipta.config import ConfigError  # noqa: F401 (notebook: chapter.ConfigError)
from ipta.figures import PAGE_WIDTH, glue_figure, page_style  # noqa: F401 (notebook: chapter.glue_figure)
from ipta.notebook import glue_values, setup_for
from ipta.theory.checks import FEATURES, compute_sweep, mean_abs_cosine_of_random_directions
from ipta.theory.config import Config


setup = setup_for(Config)
"""``setup(profile, params)``: the chapter's validated settings, shown as the page's first output."""


@dataclasses.dataclass(frozen=True)
class Result:
    """The sweep: one row per (graph, token noise, context noise) in every array of ``arrays``."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


def run(cfg: Config, progress: bool = True) -> Result:
    """All settings trained together and checked; cached on the config and the code."""
    arrays, meta = get_or_compute("theory_sweep", {"config": cfg},
                                  lambda: compute_sweep(cfg, progress),
                                  code=("ipta.theory.checks",))
    return Result(arrays, meta)


def describe(res: Result) -> str:
    """Sizes of the enumerated model, the graphs drawn and how close training came to the optimum."""
    a, m = res.arrays, res.meta
    return (f"|Z| = {m['n_configs']} configurations, |X| = {m['n_contexts']} contexts, "
            f"|Y| = {m['n_tokens']} tokens, width d = {m['width']}, "
            f"{len(a['eps'])} trained settings\n"
            f"graph edges: {m['edges']}\n"
            f"KL to the exact optimum, E_p(x): max over settings {a['kl'].max():.1e}; "
            f"worst single context {a['kl_max'].max():.1e} nats")


def _weighting_index(res: Result, weighting: str) -> int:
    if weighting not in res.meta["weightings"]:
        raise ValueError(f"weighting {weighting!r} is not one of {res.meta['weightings']}")
    return res.meta["weightings"].index(weighting)


def theorem_spearman(res: Result, key: str = "r2_white_trained") -> dict[tuple[str, float], float]:
    """Spearman(E[eps], held-out score of the log-posterior fit) per (weighting, token noise):
    the theorem, read as 'the log-posterior form tightens as eps -> 0', predicts < 0."""
    from scipy.stats import spearmanr

    a = res.arrays
    log_i = res.meta["features"].index("log_posterior")
    return {(wt, t): float(spearmanr(a["eps"][a["token_noise"] == t],
                                     a[key][a["token_noise"] == t, i, log_i]).statistic)
            for i, wt in enumerate(res.meta["weightings"]) for t in np.unique(a["token_noise"])}


def reading_diversity(res: Result) -> str:
    """Range of the rank and condition number of both diversity matrices over the sweep."""
    a, lines = res.arrays, []
    for name in ("token", "context"):
        ranks = a[f"{name}_rank"]
        lines.append(f"{name} side: rank {ranks.min()}..{ranks.max()} "
                     f"(need {res.meta['n_configs']}), condition number "
                     f"{a[f'{name}_cond'].min():.3g}..{a[f'{name}_cond'].max():.3g}")
    return "\n".join(lines)


def invertibility_quarters(res: Result) -> dict[str, np.ndarray]:
    """Masks over the sweep's rows: the least and the most invertible quarter of the settings."""
    eps_rank = res.arrays["eps"].argsort()
    n_low = max(1, len(eps_rank) // 4)
    rows = np.arange(len(eps_rank))
    return {"least invertible quarter": np.isin(rows, eps_rank[-n_low:]),
            "most invertible quarter": np.isin(rows, eps_rank[:n_low])}


def reading_cosines(res: Result, settings: dict[str, np.ndarray]) -> str:
    """Mean pair-difference cosine, same concept and different concepts, per group of settings."""
    a = res.arrays
    return "\n".join(f"{title}: mean cosine same concept {a['cos_same'][mask].mean():+.3f}, "
                     f"different concepts {a['cos_cross'][mask].mean():+.3f}"
                     for title, mask in settings.items())


def extreme_settings(res: Result) -> dict[str, int]:
    """The least and the most invertible setting (row index), titled by their E[eps]."""
    eps = res.arrays["eps"]
    eps_rank = eps.argsort()
    least, most = int(eps_rank[-1]), int(eps_rank[0])
    return {f"eps = {eps[least]:.3f}": least, f"eps = {eps[most]:.4f}": most}


def reading_probes(res: Result) -> str:
    """Mean diagonal, |off-diagonal| and distance to I of the normalised W^T A, both recipes."""
    a = res.arrays
    k = a["probe_vs_A"].shape[1]
    off = ~np.eye(k, dtype=bool)
    lines = []
    for key in ("probe_vs_A", "probe_vs_pairs"):
        m = a[key]
        lines.append(f"{key}: mean diagonal {np.diagonal(m, axis1=1, axis2=2).mean():.3f}, "
                     f"mean |off-diagonal| {np.abs(m[:, off]).mean():.3f}, "
                     f"mean ||M - I||_F {np.linalg.norm(m - np.eye(k), axis=(1, 2)).mean():.3f}")
    return "\n".join(lines)


# ----------------------------------------------------------------------- tables and figures
FEATURE_LABELS = {"log_posterior": "log p(z|x)", "posterior": "p(z|x)",
                  "mode_onehot": "one-hot mode"}


def table_r2(res: Result, key: str = "r2_white_trained", weighting: str = "p(x)"
             ) -> "pandas.DataFrame":
    """A held-out score of f ~ A u + b per (token noise, context noise), mean +- sd over graphs,
    with the effective sample size of the fitted half under that weighting."""
    import pandas as pd

    a, w = res.arrays, _weighting_index(res, weighting)
    ess = a["ess_train"] if weighting == "p(x)" else a["n_train"].astype(float)
    frame = pd.DataFrame({"token noise": a["token_noise"], "context noise": a["context_noise"],
                          "eps": a["eps"], "ESS": ess, "KL gap": a["kl"],
                          **{FEATURE_LABELS[f]: a[key][:, w, i]
                             for i, f in enumerate(FEATURES)}})
    groups = frame.groupby(["token noise", "context noise"], sort=False)
    table = groups.mean()
    for col in FEATURE_LABELS.values():
        sd = groups[col].std().fillna(0)
        table[col] = [f"{m:.3f} ± {s:.3f}" for m, s in zip(table[col], sd)]
    table["eps"] = table["eps"].map("{:.4f}".format)
    table["ESS"] = table["ESS"].map("{:.1f}".format)
    table["KL gap"] = table["KL gap"].map("{:.1e}".format)
    return table.rename(columns={"eps": "E[eps(x)]", "ESS": "ESS of fitted half",
                                 "KL gap": "KL to optimum"})


@page_style
def figure_r2(res: Result, key: str = "r2_white"):
    """A held-out score against the expected invertibility error: rows are the two weightings,
    columns the token noises; solid markers for the trained f, open ones for the exact
    optimum; one point per graph. ``key``: ``r2_white`` (whitened) or ``r2`` (summed)."""
    import matplotlib.pyplot as plt

    a = res.arrays
    noises = np.unique(a["token_noise"])[::-1]
    weightings = res.meta["weightings"]
    fig, axes = plt.subplots(len(weightings), len(noises), figsize=(PAGE_WIDTH, 7.8),
                             sharex=True, sharey=True, squeeze=False)
    label = "whitened held-out R²" if key == "r2_white" else "summed held-out R²"
    for w, wt in enumerate(weightings):
        for ax, t in zip(axes[w], noises):
            sel = a["token_noise"] == t
            for i, f in enumerate(FEATURES):
                c = f"C{i}"
                ax.scatter(a["eps"][sel], a[f"{key}_trained"][sel, w, i], color=c, s=18,
                           label=f"{FEATURE_LABELS[f]} (trained)")
                ax.scatter(a["eps"][sel], a[f"{key}_exact"][sel, w, i], facecolor="none",
                           edgecolor=c, s=34, label=f"{FEATURE_LABELS[f]} (exact optimum)")
            ax.set(xscale="log", title=f"{wt} weights, token noise {t:g}", ylim=(-0.5, 1.02))
            ax.axhline(1, color="grey", lw=0.5)
        axes[w, 0].set_ylabel(label)
    for ax in axes[-1]:
        ax.set_xlabel("invertibility error E[eps(x)]")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=2)
    return fig


@page_style
def figure_ess(res: Result):
    """Effective sample size of the p(x)-weighted fitted half against E[eps], with the number
    of contexts (the uniform weighting's) and the coefficients per output for scale."""
    import matplotlib.pyplot as plt

    a = res.arrays
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4))
    for t in np.unique(a["token_noise"])[::-1]:
        sel = a["token_noise"] == t
        ax.scatter(a["eps"][sel], a["ess_train"][sel], s=18, label=f"p(x), token noise {t:g}")
    ax.axhline(a["n_train"].mean(), color="grey", ls="--", label="uniform (contexts fitted)")
    ax.axhline(res.meta["n_configs"] + 1, color="black", ls=":",
               label="coefficients per output (|Z| + 1)")
    ax.set(xscale="log", yscale="log", xlabel="invertibility error E[eps(x)]",
           ylabel="effective sample size")
    ax.legend()
    fig.tight_layout()
    return fig


@page_style
def figure_context_residuals(res: Result, token_noise: float | None = None):
    """The pointwise reading: each context's residual under the best affine map (uniform
    weights, all contexts) against its own eps(x), one panel per u, every setting of one token
    noise (the sharpest by default), coloured by the setting's E[eps]."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    a = res.arrays
    t = a["token_noise"].min() if token_noise is None else token_noise
    rows = np.flatnonzero(a["token_noise"] == t)
    fig, axes = plt.subplots(len(FEATURES), 1, figsize=(PAGE_WIDTH - 0.4, 3 * len(FEATURES)),
                             sharex=True, sharey=True)
    norm = LogNorm(a["eps"][rows].min(), a["eps"][rows].max())
    for i, (ax, f) in enumerate(zip(axes, FEATURES)):
        for r in rows:
            points = ax.scatter(np.maximum(a["eps_X"][r], 1e-6), a["resid_FX"][r, i], s=3,
                                alpha=0.4, c=np.full(a["eps_X"].shape[1], a["eps"][r]),
                                cmap="viridis", norm=norm, rasterized=True)
        ax.set(xscale="log", title=f"u = {FEATURE_LABELS[f]}", ylim=(0, None),
               ylabel="residual / spread of f")
    axes[-1].set_xlabel("the context's own eps(x) (below 1e-6 drawn at 1e-6)")
    fig.colorbar(points, ax=axes, label="the setting's E[eps(x)]")
    fig.suptitle(f"token noise {t:g}: one dot per context and setting", y=0.995)
    return fig


@page_style
def figure_diversity(res: Result):
    """Rank and condition number of the two diversity matrices along the knob."""
    import matplotlib.pyplot as plt

    arrays, n_configs = res.arrays, res.meta["n_configs"]
    fig, (ax_r, ax_c) = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.6))
    for name, marker in (("token", "s"), ("context", "o")):
        ax_r.scatter(arrays["eps"], arrays[f"{name}_rank"], marker=marker, label=name)
        ax_c.scatter(arrays["eps"], arrays[f"{name}_cond"], marker=marker, label=name)
    ax_r.axhline(n_configs, color="grey", ls="--", label="|Z| (needed)")
    ax_r.set(xscale="log", xlabel="invertibility error E[eps(x)]", ylabel="numerical rank")
    ax_c.set(xscale="log", yscale="log", xlabel="invertibility error E[eps(x)]",
             ylabel="condition number")
    ax_r.legend()
    fig.tight_layout()
    return fig


@page_style
def figure_cosines(res: Result, settings: dict[str, np.ndarray]):
    """Histograms of pair-difference cosines, same concept vs different concepts, for a few
    settings (each a boolean mask over the sweep's rows)."""
    import matplotlib.pyplot as plt

    arrays = res.arrays
    fig, axes = plt.subplots(1, len(settings), figsize=(PAGE_WIDTH, 3.6), sharey=True)
    bins = np.linspace(-1, 1, 41)
    for ax, (title, mask) in zip(np.atleast_1d(axes), settings.items()):
        ax.hist(arrays["cos_cross"][mask].ravel(), bins, density=True, alpha=0.5,
                label="different concepts")
        ax.hist(arrays["cos_same"][mask].ravel(), bins, density=True, alpha=0.5,
                label="same concept")
        ax.set(title=title, xlabel="cosine between pair differences")
    np.atleast_1d(axes)[0].set_ylabel("density")
    np.atleast_1d(axes)[0].legend()
    fig.tight_layout()
    return fig


@page_style
def figure_probe_heatmaps(res: Result, rows: dict[str, int]):
    """cos(concept direction a_k, probe w_j) for chosen sweep rows: both directions from the
    theorem's fitted A and from mean pair differences (the paper's Figure 3 recipe)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    arrays = res.arrays
    fig, axes = plt.subplots(2, len(rows), figsize=(min(PAGE_WIDTH, 3.8 * len(rows)), 7.4),
                             squeeze=False)
    for j, (title, r) in enumerate(rows.items()):
        for i, (key, label) in enumerate((("probe_vs_A", "A B_k (theorem)"),
                                          ("probe_vs_pairs", "mean pair difference"))):
            sns.heatmap(arrays[key][r], vmin=-1, vmax=1, cmap="coolwarm", annot=True,
                        fmt=".2f", cbar=False, ax=axes[i, j], annot_kws={"size": 10})
            axes[i, j].set(title=f"{title}\nrows: {label}" if i == 0 else f"rows: {label}",
                           xlabel="probe of concept j", ylabel="direction of concept k")
    fig.tight_layout()
    return fig


@page_style
def figure_kl_curve(res: Result):
    """Mean KL(p || q) over all settings against the optimisation step."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(PAGE_WIDTH, 3.4))
    plt.semilogy(res.arrays["kl_curve"])
    plt.xlabel("training step")
    plt.ylabel("mean KL(p ‖ q), nats")
    return fig


# ----------------------------------------------------------------------- numbers for the prose
def _sharp_extremes(res: Result) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the sharpest token noise at its largest and its smallest context noise."""
    a = res.arrays
    sharp = a["token_noise"] == a["token_noise"].min()
    return (sharp & (a["context_noise"] == a["context_noise"].max()),
            sharp & (a["context_noise"] == a["context_noise"].min()))


def theorem_numbers(res: Result) -> dict[str, float]:
    """The numbers the Theorem 3.1 reading quotes (whitened held-out R^2 unless named)."""
    a, m = res.arrays, res.meta
    lp, post, mode = (m["features"].index(f) for f in FEATURES)
    least, most = _sharp_extremes(res)
    rho = theorem_spearman(res)
    sharp, noisy = a["token_noise"].min(), a["token_noise"].max()
    sel = a["token_noise"] == sharp
    values = {"kl_max": a["kl"].max(), "kl_worst": a["kl_max"].max(),
              "sharp": sharp, "noisy": noisy, "n_graphs": len(np.unique(a["graph"])),
              "white_gap": np.abs(a["r2_white_trained"] - a["r2_white_exact"]).max(),
              "summed_gap": np.abs(a["r2_trained"] - a["r2_exact"]).max(),
              "ess_max": a["ess_train"].max(), "ess_min": a["ess_train"].min(),
              "ess_most": a["ess_train"][most].mean(), "n_train": a["n_train"].mean(),
              "n_coef": m["n_configs"] + 1, "n_per_noise": int(sel.sum())}
    for w, tag in ((0, "px"), (1, "uni")):
        wt = m["weightings"][w]
        values[f"rho_{tag}_sharp"], values[f"rho_{tag}_noisy"] = rho[wt, sharp], rho[wt, noisy]
        for name, rows in (("least", least), ("most", most)):
            for f, i in (("lp", lp), ("post", post), ("mode", mode)):
                values[f"{f}_{tag}_{name}"] = a["r2_white_trained"][rows, w, i].mean()
        values[f"wins_{tag}_sharp"] = int((a["r2_white_trained"][sel, w].argmax(1) == lp).sum())
        values[f"post_wins_{tag}_noisy"] = int(
            (a["r2_white_trained"][a["token_noise"] == noisy, w].argmax(1) == post).sum())
    # The pointwise reading: median residual of each u's best affine map over contexts of
    # the sharp-token settings, split by the context's own eps(x).
    eps_X, resid = a["eps_X"][sel], a["resid_FX"][sel]
    for f, i in (("lp", lp), ("post", post), ("mode", mode)):
        values[f"resid_{f}_sure"] = np.median(resid[:, i][eps_X < 0.01])
        values[f"resid_{f}_unsure"] = np.median(resid[:, i][eps_X > 0.3])
    return values


def glue_numbers(res: Result, cfg: Config) -> dict[str, Any]:
    """Glue (myst-nb) every number the chapter's prose quotes; returns them too."""
    from IPython.display import Markdown

    a = res.arrays
    values = theorem_numbers(res)
    values["trend_uni"] = Markdown("falls" if values["lp_uni_most"] < values["lp_uni_least"]
                                   else "rises")
    trend_px = "falls" if values["lp_px_most"] < values["lp_px_least"] else "rises"
    values["weighting_agrees"] = Markdown(
        "shows the same trend" if trend_px == str(values["trend_uni"].data)
        else f"does not: under p(x) the score {trend_px}")
    values["resid_verdict"] = Markdown(
        "grows where the theorem says it should vanish"
        if values["resid_lp_sure"] > values["resid_lp_unsure"]
        else "shrinks where the theorem says it should, as it predicts")
    least = {f: values[f"{f}_uni_least"] for f in ("lp", "post", "mode")}
    values["best_least"] = Markdown({"lp": "the log-posterior", "post": "the posterior",
                                     "mode": "the one-hot mode"}[max(least, key=least.get)])
    for name in ("token", "context"):
        values[f"{name}_rank_min"] = a[f"{name}_rank"].min()
        values[f"{name}_cond_max"] = a[f"{name}_cond"].max()
    values["n_configs"] = res.meta["n_configs"]
    values["context_bits"] = int(np.log2(res.meta["n_contexts"]))
    quarters = invertibility_quarters(res)
    for tag, mask in zip(("least", "most"), quarters.values()):
        values[f"cos_same_{tag}"] = a["cos_same"][mask].mean()
        values[f"cos_cross_{tag}"] = a["cos_cross"][mask].mean()
    k = a["probe_vs_A"].shape[1]
    off = ~np.eye(k, dtype=bool)
    for key, tag in (("probe_vs_A", "A"), ("probe_vs_pairs", "pairs")):
        values[f"diag_{tag}"] = np.diagonal(a[key], axis1=1, axis2=2).mean()
        values[f"off_{tag}"] = np.abs(a[key][:, off]).mean()
        for q, mask in zip(("least", "most"), quarters.values()):
            values[f"diag_{tag}_{q}"] = np.diagonal(a[key][mask], axis1=1, axis2=2).mean()
    values["cor42_verdict"] = Markdown(
        "does not hold at any level of invertibility"
        if max(values["cos_same_least"] - values["cos_cross_least"],
               values["cos_same_most"] - values["cos_cross_most"]) < 0.1
        else "holds in part: same-concept differences are closer to parallel than the baseline")
    values["width"] = res.meta["width"]
    values["chance_cos"] = mean_abs_cosine_of_random_directions(res.meta["width"])
    values["cor43_verdict"] = Markdown(
        "pick out their own concept in both versions (diagonal above the off-diagonal and above "
        "chance)" if min(values["diag_A"], values["diag_pairs"]) > max(
            values["off_A"], values["off_pairs"], values["chance_cos"])
        else "do not clearly pick out their own concept in both versions")
    values["closer"] = Markdown(
        "the mean-pair-difference version" if values["diag_pairs"] - values["off_pairs"]
        > values["diag_A"] - values["off_A"] else "the theorem's version")
    return glue_values(values)

