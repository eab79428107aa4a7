"""The theory chapter (notebook ``01_theory``): Theorem 3.1 and Corollaries 4.2 / 4.3 checked
on the exactly enumerated model of section 2.

Like every chapter module: :class:`Config` (the parameters), :func:`setup` (validate and show
them), :func:`run` (compute, or read from the cache) returning a :class:`Result`, then the
chapter's tables (``table_*``), figures (``figure_*``) and one-line readings (``reading_*``).
The computation itself lives in :mod:`ipta.theory.checks` and the modules it imports.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from ipta.cache import get_or_compute
from ipta.config import Config as BaseConfig
from ipta.config import ConfigError, param
from ipta.notebook import setup_for
from ipta.theory.checks import FEATURES, compute_sweep


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    """Parameters of the theory chapter (notebook ``01_theory``)."""

    n_concepts: int = param(3, "number K of binary latent concepts (|Z| = 2^K)", low=2, high=6)
    graph: Literal["chain", "er"] = param("er", "latent DAG: a chain, or Erdos-Renyi with "
                                          "`edges_per_node` * K expected edges")
    edges_per_node: float = param(1.0, "ER graphs: expected edges per node (ER1, ER2, ...)",
                                  low=0.0, high=3.0)
    n_graphs: int = param(3, "random graphs (each with its own CPTs, codes and channels)",
                          low=1, high=50)
    context_bits: int = param(8, "bits M in a context x (|X| = 2^M contexts)", low=2, high=12)
    context_noise: tuple[float, ...] = param(
        (0.4, 0.3, 0.2, 0.12, 0.07, 0.04, 0.02, 0.01),
        "flip probabilities of the context bits: the invertibility knob (0.5 = no information)",
        low=1e-4, high=0.49)
    token_noise: tuple[float, ...] = param(
        (0.5, 0.02), "probabilities that the next token ignores z (its channel's noise)",
        low=1e-4, high=1.0)
    vocab_extra: int = param(1, "vocabulary size minus |Z| (the diversity condition needs >= 1)",
                             low=0, high=64)
    width_extra: int = param(0, "representation width d minus (|Y| - 1), the least width that "
                             "can reach the optimum", low=0, high=64)
    encoder: Literal["table", "mlp"] = param("table", "f(x): a free table per context, or an MLP "
                                             "on the context bits")
    steps: int = param(3000, "optimisation steps of the next-token model", low=1, high=200_000)
    lr: float = param(0.05, "Adam learning rate", low=1e-6, high=10.0)
    test_fraction: float = param(0.5, "share of contexts held out of the least-squares fit",
                                 low=0.05, high=0.95)
    seed: int = param(0, "master seed (graphs, CPTs, codes, initialisations, splits)", low=0)

    PROFILES = {
        "smoke": {"n_graphs": 2, "context_bits": 6, "context_noise": (0.3, 0.1, 0.02),
                  "steps": 600},
        "paper": {"n_concepts": 4, "n_graphs": 10, "context_bits": 11, "steps": 20000,
                  "lr": 0.02, "context_noise": (0.45, 0.4, 0.3, 0.2, 0.12, 0.07, 0.04, 0.02,
                                                0.01, 0.005),
                  "token_noise": (0.5, 0.2, 0.02)},
    }

    def validate(self) -> None:
        if self.context_bits < self.n_concepts:
            raise ConfigError(f"parameter 'context_bits': {self.context_bits} is below "
                              f"n_concepts={self.n_concepts}; a context needs at least K bits "
                              "to be able to identify z")
        if self.graph == "chain" and self.edges_per_node != 1.0:
            raise ConfigError("parameter 'edges_per_node' only applies to graph='er'")


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


def reading_theorem(res: Result) -> str:
    """Per token noise: Spearman(eps, held-out R^2 of the log-posterior) and which u fits best."""
    from scipy.stats import spearmanr

    a, features = res.arrays, res.meta["features"]
    log_i = features.index("log_posterior")
    lines = []
    for t in np.unique(a["token_noise"])[::-1]:
        sel = a["token_noise"] == t
        rho = spearmanr(a["eps"][sel], a["r2_trained"][sel, log_i]).statistic
        wins = np.bincount(a["r2_trained"][sel].argmax(1), minlength=3)
        lines.append(f"token noise {t:g}: Spearman(eps, held-out R² of log-posterior) = "
                     f"{rho:+.2f} (the theorem predicts < 0); best u in how many settings: "
                     + ", ".join(f"{f} {n}" for f, n in zip(features, wins)))
    return "\n".join(lines)


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


def table_r2(res: Result, key: str = "r2_trained") -> "pandas.DataFrame":
    """Held-out R^2 of f ~ A u + b per (token noise, context noise): mean +- sd over graphs."""
    import pandas as pd

    arrays = res.arrays
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


def figure_r2(res: Result):
    """R^2 against the expected invertibility error, one panel per token noise: solid markers
    for the trained model, open ones for the exact optimum; one point per graph."""
    import matplotlib.pyplot as plt

    arrays = res.arrays
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


def figure_diversity(res: Result):
    """Rank and condition number of the two diversity matrices along the knob."""
    import matplotlib.pyplot as plt

    arrays, n_configs = res.arrays, res.meta["n_configs"]
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


def figure_cosines(res: Result, settings: dict[str, np.ndarray]):
    """Histograms of pair-difference cosines, same concept vs different concepts, for a few
    settings (each a boolean mask over the sweep's rows)."""
    import matplotlib.pyplot as plt

    arrays = res.arrays
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


def figure_probe_heatmaps(res: Result, rows: dict[str, int]):
    """cos(concept direction a_k, probe w_j) for chosen sweep rows: both directions from the
    theorem's fitted A and from mean pair differences (the paper's Figure 3 recipe)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    arrays = res.arrays
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


def figure_kl_curve(res: Result):
    """Mean KL(p || q) over all settings against the optimisation step."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(5, 3))
    plt.semilogy(res.arrays["kl_curve"])
    plt.xlabel("step")
    plt.ylabel("mean KL(p || q), all settings")
    return fig
