"""The theory chapter's figures, drawn at the book's page width; the chapter module hands them
to the notebook. ``res`` is the chapter's Result: the trained sweep's ``arrays`` and ``meta``,
and the exact optimum's grid over token noise (``channels``)."""

from __future__ import annotations

import numpy as np

from ipta.figures import PAGE_WIDTH, page_style
from ipta.theory.checks import FEATURES

FEATURE_LABELS = {"log_posterior": "log p(z|x)", "posterior": "p(z|x)",
                  "mode_onehot": "one-hot mode"}


@page_style
def figure_r2(res, key: str = "r2_white"):
    """A held-out score against the expected invertibility error: rows are the two weightings,
    columns the token noises; solid markers for the trained f, open ones for the exact
    optimum; one point per graph. ``key``: ``r2_white`` (whitened) or ``r2`` (summed)."""
    import matplotlib.pyplot as plt

    a = res.arrays
    noises = np.unique(a["token_noise"])[::-1]
    weightings = res.meta["weightings"]
    fig, axes = plt.subplots(len(weightings), len(noises), figsize=(PAGE_WIDTH, 8.2),
                             sharex=True, sharey=True, squeeze=False)
    label = "whitened held-out R²" if key == "r2_white" else "summed held-out R²"
    for w, wt in enumerate(weightings):
        # Each weighting against the invertibility it weighs: E_p(x)[eps] or the plain mean.
        eps = a["eps"] if wt == "p(x)" else a["eps_X"].mean(1)
        for ax, t in zip(axes[w], noises):
            sel = a["token_noise"] == t
            for i, f in enumerate(FEATURES):
                c = f"C{i}"
                ax.scatter(eps[sel], a[f"{key}_trained"][sel, w, i], color=c, s=18,
                           label=f"{FEATURE_LABELS[f]} (trained)")
                ax.scatter(eps[sel], a[f"{key}_exact"][sel, w, i], facecolor="none",
                           edgecolor=c, s=34, label=f"{FEATURE_LABELS[f]} (exact optimum)")
            ax.set(xscale="log", title=f"{wt} weights, token noise {t:g}", ylim=(-0.5, 1.02))
            ax.axhline(1, color="grey", lw=0.5)
            ax.set_xlabel("E_p(x)[eps(x)]" if wt == "p(x)" else "mean eps(x), uniform")
        axes[w, 0].set_ylabel(label)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=2)
    return fig


@page_style
def figure_r2_grid(res, key: str = "r2_white_trained"):
    """The held-out score of f ~ A u + b over the whole grid at a glance: one heatmap per
    weighting, a row per feature u and token noise, context noise across (less noise, a more
    invertible context, to the right); each cell the mean over graphs."""
    import matplotlib.pyplot as plt

    a = res.arrays
    tokens = np.unique(a["token_noise"])[::-1]
    contexts = np.unique(a["context_noise"])[::-1]
    weightings = res.meta["weightings"]
    rows = [(i, t) for i in range(len(FEATURES)) for t in tokens]
    fig, axes = plt.subplots(len(weightings), 1, squeeze=False, figsize=(
        PAGE_WIDTH, 0.9 + len(weightings) * (0.75 + 0.36 * len(rows))))
    for w, (ax, wt) in enumerate(zip(axes[:, 0], weightings)):
        grid = np.array([[a[key][(a["token_noise"] == t) & (a["context_noise"] == c), w, i]
                          .mean() for c in contexts] for i, t in rows])
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (r, c), value in np.ndenumerate(grid):
            ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=9,
                    color="white" if value < 0.6 else "black")
        for r in range(len(tokens), len(rows), len(tokens)):  # a line between features
            ax.axhline(r - 0.5, color="white", lw=2)
        ax.set_yticks(range(len(rows)), [f"{FEATURE_LABELS[FEATURES[i]]}, token noise {t:g}"
                                         for i, t in rows], fontsize=9)
        ax.set_xticks(range(len(contexts)), [f"{c:g}" for c in contexts])
        ax.set_title(f"{wt} weights")
        fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label="held-out R²")
    axes[-1, 0].set_xlabel("context noise (less to the right: the context more invertible)")
    fig.tight_layout()
    return fig


@page_style
def figure_ess(res):
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
def figure_context_residuals(res, token_noise: float | None = None):
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
def figure_diversity(res):
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
def figure_cosines(res, settings: dict[str, np.ndarray]):
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
def figure_probe_heatmaps(res, rows: dict[str, int]):
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
def figure_kl_curve(res):
    """Mean KL(p || q) over all settings against the optimisation step."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(PAGE_WIDTH, 3.4))
    plt.semilogy(res.arrays["kl_curve"])
    plt.xlabel("training step")
    plt.ylabel("mean KL(p ‖ q), nats")
    return fig


@page_style
def figure_token_channel(res):
    """Theorem 3.1 at the exact optimum, token noise against invertibility (uniform weights):
    the whitened held-out R^2 of f ~ A log p(z|x) + b against the mean eps(x), one line per
    token noise (top); the remainder 1 - R^2 against the token noise, one line per context noise
    (middle); Corollary 4.2's mean cosine between pair differences of one concept, for the
    chapter's named channel and an additive one, at a sharp token noise (bottom)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    a, m = res.channels
    uniform, lp = m["weightings"].index("uniform"), m["lp"]
    named = a["channel"] == "named"
    contexts = np.unique(a["context_noise"])[::-1]
    fig, axes = plt.subplots(3, 1, figsize=(PAGE_WIDTH, 11.0))

    def mean_over_graphs(key, sel, index=None):
        values = a[key] if index is None else a[key][:, index[0], index[1]]
        return np.array([values[sel & (a["context_noise"] == c)].mean() for c in contexts])

    noises = m["token_noise_grid"]
    cmap = plt.get_cmap("viridis")
    for i, t in enumerate(noises):
        sel = named & (a["token_noise"] == t)
        axes[0].plot(mean_over_graphs("eps_uniform", sel),
                     mean_over_graphs("r2_white", sel, (uniform, lp)), "-o", ms=3,
                     color=cmap(i / max(len(noises) - 1, 1)), label=f"token noise {t:g}")
    axes[0].set(xscale="log", xlabel="invertibility error, mean eps(x) over contexts",
                ylabel="whitened held-out R²", title="f ≈ A log p(z|x) + b at the exact optimum")
    axes[0].legend(ncol=2, fontsize=9)
    norm = LogNorm(contexts.min(), contexts.max())
    positive = [t for t in noises if t > 0]
    for c in contexts:
        rem = [1 - a["r2_white"][named & (a["token_noise"] == t) & (a["context_noise"] == c),
                                 uniform, lp].mean() for t in positive]
        axes[1].plot(positive, np.maximum(rem, 1e-6), "-o", ms=3,
                     color=plt.get_cmap("plasma")(norm(c)), label=f"context noise {c:g}")
    axes[1].set(xscale="log", yscale="log", xlabel="token noise",
                ylabel="1 − R² (remainder)", title="the remainder grows with the token noise")
    axes[1].legend(ncol=2, fontsize=8.5)
    sharp = m.get("sharp", 1e-4)
    for channel, style in (("named", "-o"), ("additive", "-s")):
        for t, colour in ((sharp, "C0"), (max(noises), "C3")):
            sel = (a["channel"] == channel) & (a["token_noise"] == t)
            axes[2].plot(mean_over_graphs("eps_uniform", sel), mean_over_graphs("cos_same", sel),
                         style, ms=4, color=colour, label=f"{channel} channel, token noise {t:g}")
    axes[2].set(xscale="log", xlabel="invertibility error, mean eps(x) over contexts",
                ylabel="mean cosine, same concept", ylim=(-0.2, 1.05),
                title="Corollary 4.2: are pair differences of one concept parallel?")
    axes[2].legend(fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
