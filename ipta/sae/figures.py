"""The SAE chapter's figures (Figures 4b, 6 and 7, the chance levels, the long setting), drawn at
the book's page width; the chapter module hands them to the notebook."""

from __future__ import annotations

from typing import Any

import numpy as np

from ipta.figures import PAGE_WIDTH, page_style
from ipta.sae.labels import AGAINST_LABELS, READING_LABELS, VARIANT_LABELS, by_label
from ipta.sae.runs import Run


@page_style
def figure_curves(runs: list[Run], metrics_: tuple[str, ...], label, title: str):
    """Metric trajectories over training steps (Figures 6 and 7): one line per ``label(run)``,
    the mean over that label's seeds, with a band of one standard deviation."""
    import matplotlib.pyplot as plt

    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(label(r), []).append(r)
    rows = -(-len(groups) // 2)  # legend rows
    height = 2.9 * len(metrics_) + 0.35 * rows + 0.5
    fig, axes = plt.subplots(len(metrics_), 1, figsize=(PAGE_WIDTH, height), sharex=True)
    for ax, m in zip(np.atleast_1d(axes), metrics_):
        for i, (name, members) in enumerate(groups.items()):
            steps = [h["step"] for h in members[0].history]
            values = np.array([[h[m] for h in r.history] for r in members])
            mean, sd = values.mean(0), values.std(0, ddof=1) if len(values) > 1 else 0 * values[0]
            ax.plot(steps, mean, marker=".", color=f"C{i % 10}",
                    label=f"{name} ({len(members)} seeds)")
            ax.fill_between(steps, mean - sd, mean + sd, color=f"C{i % 10}", alpha=0.2)
        ax.set_ylabel(METRIC_LABELS.get(m, m))
        ax.grid(alpha=0.3)
        if m.endswith("mse"):
            from matplotlib.ticker import FormatStrFormatter

            ax.set_yscale("log")
            for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
                axis(FormatStrFormatter("%.3g"))
    np.atleast_1d(axes)[-1].set_xlabel("training step")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, (0.35 * rows + 0.3) / height, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=2)
    return fig


METRIC_LABELS = {"pairs_mse": "MSE, word-pair inputs", "val_mse": "MSE, held-out tokens",
                 "val_l0": "active features (L0)", "mean_pcc": "mean PCC (paper's)",
                 "coverage": "coverage (PCC > 0.5)"}
"""Axis labels, in words, of the metrics the curves show."""


@page_style
def figure_final_mse(res):
    """Figure 4b: reconstruction MSE on the pair words (the paper's measure) per variant."""
    import matplotlib.pyplot as plt

    main, matched = res.main, res.matched
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.2))
    bars = [(f"{VARIANT_LABELS[r.variant]}\nown L0 ({r.final['val_l0']:.0f})",
             r.final["pairs_mse"]) for r in main if r.seed == main[0].seed]
    bars += [(f"{VARIANT_LABELS[r.variant]}\nk={r.k}", r.final["pairs_mse"])
             for r in matched if r.seed == main[0].seed]
    ax.bar([b[0] for b in bars], [b[1] for b in bars],
           color=["C0", "C1", "C2", "C3"][:len(main)] + ["C5"] * len(matched))
    ax.set_ylabel("MSE on word-pair inputs")
    ax.tick_params(axis="x", labelsize=9.5)
    fig.tight_layout()
    return fig


@page_style
def figure_chance(res):
    """Mean assigned correlation of every trained variant and every control, in each reading of
    the metric: bars are means over seeds, whiskers one standard deviation."""
    import matplotlib.pyplot as plt

    readings = {"mean_pcc": "paper: Pearson(logit, exp(code))", "mean_pcc_raw": "Pearson(logit, code)",
                "mean_pcc_spearman": "Spearman(logit, code)",
                "mean_pcc_exp_std": "Pearson(logit, exp(standardised code))",
                "mean_pcc_heldout": "paper's, held out (other words)"}
    runs = res.main + res.controls
    n_bars = len(by_label(runs, "mean_pcc"))
    fig, axes = plt.subplots(len(readings), 1, figsize=(PAGE_WIDTH, (0.28 * n_bars + 1.2)
                                                         * len(readings)), sharex=True)
    for ax, (key, title) in zip(axes.flat, readings.items()):
        values = by_label(runs, key)
        names = list(values)
        means = [values[n].mean() for n in names]
        sds = [values[n].std(ddof=1) if len(values[n]) > 1 else 0.0 for n in names]
        colours = ["C0" if n in VARIANT_LABELS.values() else "0.6" for n in names]
        ax.barh(names, means, xerr=sds, color=colours, capsize=2)
        ax.set(xlim=(0, 1))
        ax.set_title(title)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    axes.flat[-1].set_xlabel("mean assigned correlation over concepts")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------- the long setting


LONG_PANELS = {"mean_pcc": "paper's reading", "mean_pcc_raw": "Pearson, raw codes",
               "mean_pcc_spearman": "Spearman", "mean_pcc_heldout": "paper's, held out",
               "pairs_code_p99": "code size (99th pct)", "pairs_fvu": "FVU, pair words"}
"""The long setting's panels: four readings of the metric (minus the untrained copy's), then
the size of the codes and the reconstruction error on the pair words."""


@page_style
def figure_long(summary: dict[str, Any] | None):
    """The long setting against training tokens, one line per variant: each reading's margin
    over the variant's untrained copy, the size of the codes and the pair words' FVU; without a
    summary, a panel saying how to make one."""
    import matplotlib.pyplot as plt

    if summary is None:
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "not computed yet: run `ipta sae-long`", ha="center", va="center")
        return fig

    fig, axes = plt.subplots(3, 2, figsize=(PAGE_WIDTH, 9.0), sharex=True)
    for ax, (key, title) in zip(axes.flat, LONG_PANELS.items()):
        margin = key.startswith("mean_pcc")
        for i, (variant, v) in enumerate(summary["variants"].items()):
            base = v["untrained"][key] if margin else 0.0
            if base is None or any(x is None for x in v[key]):
                continue
            ax.plot(v["tokens"], [x - base for x in v[key]], "-o", ms=3, color=f"C{i}",
                    label=VARIANT_LABELS[variant])
        if margin:
            ax.axhline(0, color="grey", lw=1)
        ax.set_title(f"{title}{' minus untrained' if margin else ''}", fontsize=11)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("training tokens")
    axes[0, 0].legend(fontsize=9)
    fig.tight_layout()
    return fig


@page_style
def figure_verdicts(verdicts: dict[str, Any]):
    """Every verdict with its 95% bootstrap interval: one panel per variant, a row per control
    and reading; a filled marker where the gain survives Holm's correction over the table."""
    import matplotlib.pyplot as plt

    rows = verdicts["rows"]
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    ncols = min(2, len(variants))
    nrows = -(-len(variants) // ncols)
    per_panel = max(sum(r["variant"] == v for r in rows) for v in variants)
    height = nrows * (0.2 * per_panel + 1.0) + 0.6
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, height), sharex=True,
                             sharey=True, squeeze=False)
    for ax, variant in zip(axes.flat, variants):
        mine = [r for r in rows if r["variant"] == variant]
        for y, r in enumerate(mine):
            colour = f"C{list(READING_LABELS).index(r['reading'])}"
            ax.plot([r["low"], r["high"]], [y, y], color=colour, lw=1.5)
            ax.plot(r["gain"], y, "o", color=colour,
                    markerfacecolor=colour if r["beats"] else "white")
        ax.axvline(0, color="grey", lw=1)
        ax.set_yticks(range(len(mine)), [f"{AGAINST_LABELS[r['against']]} · "
                                          f"{READING_LABELS[r['reading']]}" for r in mine],
                      fontsize=8.5)
        ax.invert_yaxis()
        ax.set_title(VARIANT_LABELS[variant])
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(variants):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("gain in mean PCC")
    fig.tight_layout()
    return fig


@page_style
def figure_planted(planted: dict[str, Any]):
    """The metric on the true codes of the planted benchmark, rescaled (top) or made denser
    (bottom) without changing what they say about the concepts: one line per reading."""
    import matplotlib.pyplot as plt

    keys = {"paper": "mean_pcc", "raw": "mean_pcc_raw", "spearman": "mean_pcc_spearman",
            "exp_std": "mean_pcc_exp_std", "heldout": "mean_pcc_heldout"}
    fig, axes = plt.subplots(2, 1, figsize=(PAGE_WIDTH, 7.0), sharey=True)
    for ax, sweep, xlabel in ((axes[0], "scale", "codes multiplied by"),
                              (axes[1], "density", "share of zero codes made tiny and positive")):
        xs = [float(x) for x in planted[sweep]]
        for i, (reading, key) in enumerate(keys.items()):
            ax.plot(xs, [planted[sweep][x][key] for x in planted[sweep]], "-o", color=f"C{i}",
                    label=READING_LABELS[reading])
        ax.set(xlabel=xlabel, ylabel="mean PCC, true codes")
        if sweep == "scale":
            ax.set_xscale("log", base=2)
        else:
            ax.set_xscale("symlog", linthresh=0.01)
        ax.grid(alpha=0.3)
    axes[0].legend(ncol=3, fontsize=9.5)
    fig.tight_layout()
    return fig
