"""The probing chapter's figures (Figure 3's heatmaps and the rigorous mode's sweep of C), drawn
at the book's page width; the chapter module hands them to the notebook."""

from __future__ import annotations

import numpy as np

from ipta.figures import PAGE_WIDTH, page_style
from ipta.probing.alignment import ESTIMATOR, NOISE_CEILING

@page_style
def figure_cos_heatmaps(matrices: dict[str, np.ndarray], names: tuple[str, ...],
                        vmin: float = 0.0, vmax: float = 1.0):
    """Heatmaps of cos(a_i, w_j) laid out like Figure 3 (coolwarm, rows a_i, columns w_j), one
    per row at the page's width, so that 27 concept names stay legible."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    n = len(matrices)
    side = PAGE_WIDTH if len(names) > 10 else PAGE_WIDTH * 0.7
    fig, axes = plt.subplots(n, 1, figsize=(side, side * n), squeeze=False)
    for ax, (title, M_KK) in zip(axes.flat, matrices.items()):
        sns.heatmap(M_KK, ax=ax, cmap="coolwarm", vmin=vmin, vmax=vmax, square=True,
                    xticklabels=names, yticklabels=names, cbar_kws={"shrink": 0.6,
                                                                    "label": "cosine"})
        ax.set_title(title)
        ax.set_xlabel("probe of concept j (w_j)")
        ax.set_ylabel("direction of concept i (a_i)")
        ax.tick_params(labelsize=9)
    fig.tight_layout()
    return fig


@page_style
def figure_paper_heatmaps(res):
    """Figure 3 as the authors compute it: one heatmap per model and concept set (paper mode),
    on the same -1..1 colour scale as the rigorous mode's."""
    names = res.names[next(iter(res.names))]
    return figure_cos_heatmaps({f"{m} · {s} pairs · C={r['C']:g}": r["M"]
                                for (m, s), r in res.paper.items()}, names,
                               vmin=-1.0, vmax=1.0)


@page_style
def figure_rigorous_heatmaps(res, cfg):
    """The rigorous mode's seed-mean held-out matrices at the largest C: rows are directions
    a_i from held-out pairs, columns probes w_j fitted on training pairs (-1..1 colour scale)."""
    names = res.names[next(iter(res.names))]
    c_max = max(cfg.C_sweep)
    models = {key: Ms for key, Ms in res.rigorous_M.items() if key[1] != "planted"}
    return figure_cos_heatmaps({f"{m} · {s} pairs · C={c_max:g}\nrows: held-out a_i, "
                                f"columns: training w_j": Ms[c_max]
                                for (m, s), Ms in models.items()}, names,
                               vmin=-1.0, vmax=1.0)

@page_style
def figure_c_sweep(table):
    """Mean diagonal and mean |off-diagonal| of the held-out matrix against C, per model and set
    (the positive controls included), with the causal inner product's diagonal, the
    permuted-label null, the mean-difference estimator and the noise ceiling."""
    import matplotlib.pyplot as plt

    rig = table[table["mode"] == "rigorous"]
    groups = list(rig.groupby(["model", "set"], sort=False))
    ncols = min(2, len(groups))
    nrows = -(-len(groups) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, 3.4 * nrows + 1.6),
                             sharey=True, squeeze=False)
    for ax, ((model, source), g) in zip(axes.flat, groups):
        for kind, colour, style in ((ESTIMATOR, "C2", "--"), (NOISE_CEILING, "k", ":")):
            level = g[g["kind"] == kind]["diag"]
            if len(level):
                ax.axhline(float(level.iloc[0]), color=colour, lw=1, ls=style, label=kind)
        for kind, metric, colour, style in (("probe", "diag", "C3", "-o"),
                                            ("probe", "offdiag_abs", "C0", "-o"),
                                            ("probe, causal", "diag", "C1", "-s"),
                                            ("permuted-label null", "diag", "C7", ":x")):
            part = g[g["kind"] == kind].sort_values("C")
            if len(part):
                ax.errorbar(part["C"], part[metric], yerr=part.get(f"{metric} sd"), fmt=style,
                            color=colour, label=f"{kind}: {metric}", capsize=2, ms=4)
        ax.set_xscale("log")
        ax.set_xlabel("C (inverse L2 strength)")
        ax.set_title(f"{model} · {source}", fontsize=10.5)
        ax.set_ylim(-0.2, 1.05)
    for ax in axes[:, 0]:
        ax.set_ylabel("cosine")
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    labels = [lab.replace(": diag", ": mean diagonal").replace(": offdiag_abs",
                                                               ": mean |off-diagonal|")
              for lab in labels]
    fig.tight_layout(rect=(0, 1.6 / (3.4 * nrows + 1.6), 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9)
    return fig
