"""The simulations chapter (notebook ``02_simulations``): Figure 2, masked next-token MLPs on
data from random DAGs of binary latent concepts (paper section 6, appendix G.1).

Like every chapter module: :class:`Config`, :func:`setup`, :func:`run` returning a
:class:`Result`, then tables (``table_*``), figures (``figure_*``) and readings (``reading_*``).
The computation lives in :mod:`ipta.simulations.sweep` and the modules it imports.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ipta.cache import get_or_compute
from ipta.figures import PAGE_WIDTH, glue_figure, page_style  # noqa: F401 (notebook: chapter.glue_figure)
from ipta.notebook import glue_values, setup_for
from ipta.simulations.config import Config
from ipta.simulations.sweep import results_frame, run_sweep
from ipta.stats import HELPS, Difference


setup = setup_for(Config)
"""``setup(profile, params)``: the chapter's validated settings, shown as the page's first output."""


@dataclasses.dataclass(frozen=True)
class Result:
    """One row per run (its setting, mean probe accuracies, final loss, exact measures) and
    every run's training loss per step ``loss_ST`` (rows in the table's order)."""

    runs: "pandas.DataFrame"
    loss_ST: np.ndarray


def run(cfg: Config, progress: bool = True) -> Result:
    """The whole sweep of Figure 2, cached on the config and the code."""
    arrays, meta = get_or_compute("simulations", {"config": cfg},
                                  lambda: run_sweep(cfg, progress=progress),
                                  code=("ipta.simulations.sweep",))
    return Result(results_frame(arrays, meta), arrays["loss_ST"])


def describe(res: Result) -> str:
    """How many runs were trained, over which settings and seeds."""
    runs = res.runs
    settings = runs.groupby(["panel", "graph", "n_latents", "n_observed"]).ngroups
    return (f"{len(runs)} runs: {settings} settings x {runs.seed.nunique()} seeds, "
            f"{res.loss_ST.shape[1]} steps each")


def table_excess_loss(res: Result) -> "pandas.DataFrame":
    """Final training loss minus its exact floor (nats), mean over runs, by panel and K."""
    runs = res.runs
    excess = (runs.final_loss - runs.loss_floor).groupby([runs.panel, runs.n_latents]).mean()
    return excess.round(3).to_frame("excess_loss")


def table_gaps(res: Result) -> "pandas.DataFrame":
    """Per panel and graph: trained accuracy over the untrained MLP and over the raw bits, its
    distance below the exact ceiling, and the final loss (means over runs)."""
    runs = res.runs
    gaps = runs.assign(over_untrained=runs.trained - runs.untrained,
                       over_raw=runs.trained - runs.raw,
                       below_ceiling=runs.bayes_masked - runs.trained)
    return gaps.groupby(["panel", "graph"])[["over_untrained", "over_raw", "below_ceiling",
                                             "final_loss"]].mean().round(3)


def left_correlation(res: Result) -> float:
    """Correlation, over the left panel's settings, of trained accuracy and posterior concentration."""
    left = table_summary(res)
    left = left[left.panel == "left"]
    return float(left[["trained_mean", "posterior_concentration"]].corr().iloc[0, 1])


def reading_summary(res: Result) -> str:
    """The page's closing reading, as Markdown bullets computed from the run."""
    table = table_summary(res)
    left = table[table.panel == "left"]
    corr = left_correlation(res)
    right = res.runs[res.runs.panel == "right"]
    by_k = right.groupby("n_latents")[["trained", "untrained", "raw", "bayes_masked"]].mean()
    k_lo, k_hi = by_k.index.min(), by_k.index.max()
    gap_right = (right.trained - right.untrained).mean()
    gap_right_pos = (right.trained_per_position - right.untrained_per_position).mean()
    left_gap = (left.trained_mean - left.untrained_mean).abs().max()
    return (
        f"- Left panel: trained accuracy and posterior concentration correlate at {corr:.2f}; the "
        f"trained and untrained lines differ by at most {left_gap:.3f} at any m.\n"
        f"- Right panel: trained accuracy goes from {by_k.trained[k_lo]:.3f} at K = {k_lo} to "
        f"{by_k.trained[k_hi]:.3f} at K = {k_hi} (exact ceiling {by_k.bayes_masked[k_hi]:.3f}); "
        f"the untrained network goes from {by_k.untrained[k_lo]:.3f} to "
        f"{by_k.untrained[k_hi]:.3f}, the raw bits from {by_k.raw[k_lo]:.3f} to "
        f"{by_k.raw[k_hi]:.3f}.\n"
        f"- Trained minus untrained, averaged over the right panel's runs: {gap_right:+.3f} with "
        f"the pooled probe of G.1, {gap_right_pos:+.3f} with one probe per masked position.")


# ----------------------------------------------------------------------- tables and figures
SERIES = {"trained": "next-token MLP (trained)", "untrained": "same MLP, untrained",
          "raw": "raw observed bits", "bayes_masked": "best possible (masked input, exact)"}


def table_summary(res: Result) -> "pandas.DataFrame":
    """Mean and standard deviation over seeds of each setting's accuracies, with exact measures."""
    df = res.runs
    keys = ["panel", "graph", "n_latents", "n_observed"]
    cols = ["trained", "untrained", "raw"]
    stats = df.groupby(keys)[cols].agg(["mean", "std"])
    stats.columns = [f"{c}_{s}" for c, s in stats.columns]
    exact = df.groupby(keys)[["posterior_concentration", "identified_share", "bayes_masked"]].mean()
    return stats.join(exact).reset_index()


def _panel(ax, df: "pandas.DataFrame", x: str, title: str) -> None:
    """Accuracy against ``x`` (mean and one standard deviation over seeds) for every series."""
    grouped = df.groupby(x)
    xs = np.array(sorted(df[x].unique()))
    for name, label in SERIES.items():
        mean, std = grouped[name].mean().loc[xs], grouped[name].std().fillna(0).loc[xs]
        style = "--" if name == "bayes_masked" else "-o"
        ax.plot(xs, mean, style, label=label, color="k" if name == "bayes_masked" else None)
        ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
    conc = grouped["posterior_concentration"].mean().loc[xs]
    ax.set_xticks(xs, [f"{v}\n{c:.2f}" for v, c in zip(xs, conc)])
    ax.set_title(title)
    ax.grid(alpha=0.3)


@page_style
def figure_training_loss(res: Result, window: int = 50):
    """Excess training loss (loss minus its exact floor), mean over seeds, per setting, log scale.

    A moving average over ``window`` steps smooths the noise of 64-sample batches; a curve that
    has flattened says more steps would change little.
    """
    import matplotlib.pyplot as plt

    df, loss_ST = res.runs, res.loss_ST
    window = max(1, min(window, loss_ST.shape[1] // 5))  # short (smoke) runs: a shorter window
    kernel = np.ones(window) / window
    smooth_ST = np.stack([np.convolve(l_T, kernel, mode="valid") for l_T in loss_ST])
    excess_ST = np.maximum(smooth_ST - df.loss_floor.to_numpy()[:, None], 1e-4)
    steps = np.arange(window, loss_ST.shape[1] + 1)
    fig, axes = plt.subplots(2, 1, figsize=(PAGE_WIDTH, 7), sharex=True)
    for ax, (panel, x) in zip(axes, (("left", "n_observed"), ("right", "n_latents"))):
        sub = df[df.panel == panel]
        symbol = "m" if x == "n_observed" else "K"
        for value, rows in sub.groupby(x).groups.items():
            ax.plot(steps, excess_ST[rows].mean(0), label=f"{symbol} = {value}")
        ax.set_yscale("log")
        ax.set_title("chain (left panel)" if panel == "left" else "ER graphs (right panel)")
        ax.set_ylabel("loss above its floor (nats)")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("training step")
    fig.tight_layout()
    return fig


@page_style
def figure_2(res: Result):
    """Figure 2, left (chain, accuracy vs m) and right (one axes per ERk, accuracy vs K).

    Under each x tick: the exact posterior concentration E_x[max_c P(c|x)] of that setting.
    """
    import matplotlib.pyplot as plt

    df = res.runs
    graphs = sorted(df[df.panel == "right"].graph.unique())
    nrows = -(-(1 + len(graphs)) // 2)
    spare = (1 + len(graphs)) % 2 == 1  # an empty slot takes the legend
    extra = 0.0 if spare else 0.9
    fig, axes = plt.subplots(nrows, 2, figsize=(PAGE_WIDTH, 3.9 * nrows + extra), sharey=True,
                             squeeze=False)
    axes = axes.ravel()
    left = df[df.panel == "left"]
    _panel(axes[0], left, "n_observed", f"chain of {left.n_latents.iloc[0]} latents")
    axes[0].set_xlabel("observed variables m\n(posterior concentration)")
    for ax, g in zip(axes[1:], graphs):
        sub = df[df.graph == g]
        _panel(ax, sub, "n_latents", f"{g}, m = {sub.n_observed.iloc[0] // sub.n_latents.iloc[0]}K")
        ax.set_xlabel("latent variables K\n(posterior concentration)")
    for ax in axes[::2]:
        ax.set_ylabel("probe accuracy")
    for ax in axes[1 + len(graphs):]:
        ax.axis("off")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, extra / (3.9 * nrows + extra), 1, 1))
    if spare:
        axes[-1].legend(handles, labels, loc="center")
    else:
        fig.legend(handles, labels, loc="lower center", ncol=2)
    return fig


# ----------------------------------------------------------------------- the controls
READINGS = {"pooled": ("trained", "untrained"),
            "per position": ("trained_per_position", "untrained_per_position")}
"""The two probe readings of the MLP output: (trained column, untrained column) of ``runs``."""


def seed_gain(res: Result, panel: str, trained: str, untrained: str) -> Difference:
    """Trained minus untrained accuracy, averaged over a panel's settings within each seed,
    then compared across seeds."""
    runs = res.runs[res.runs.panel == panel]
    return Difference.of((runs[trained] - runs[untrained]).groupby(runs.seed).mean().to_numpy())


def n_layers(res: Result) -> int:
    return sum(c.startswith("trained_layer") for c in res.runs.columns)


def table_controls(res: Result) -> "pandas.DataFrame":
    """Per panel and size: trained and untrained accuracy, pooled over masked positions and per
    masked position, and per layer (pooled), as mean ± sd over seeds."""
    cols = {"pooled, trained": "trained", "pooled, untrained": "untrained",
            "per position, trained": "trained_per_position",
            "per position, untrained": "untrained_per_position"}
    return _seed_table(res, cols)


def table_layers(res: Result) -> "pandas.DataFrame":
    """Per panel and size: trained and untrained accuracy of the pooled probe after each block,
    as mean ± sd over seeds."""
    cols = {}
    for l in range(1, n_layers(res) + 1):
        cols[f"block {l}, trained"] = f"trained_layer{l}"
        cols[f"block {l}, untrained"] = f"untrained_layer{l}"
    return _seed_table(res, cols)


def _seed_table(res: Result, cols: dict[str, str]) -> "pandas.DataFrame":
    """``cols`` (title -> column of ``runs``) per panel and size, as mean ± sd over seeds."""
    runs = res.runs
    x = np.where(runs.panel == "left", "m = " + runs.n_observed.astype(str),
                 "K = " + runs.n_latents.astype(str))
    # Seeds first averaged over the panel's graphs, so the spread is over seeds only.
    per_seed = runs.assign(size=x).groupby(["panel", "size", "seed"], sort=False)[
        list(cols.values())].mean()
    groups = per_seed.groupby(level=["panel", "size"], sort=False)
    mean, sd = groups.mean(), groups.std().fillna(0)
    table = mean.copy().astype(object)
    for c in cols.values():
        table[c] = [f"{m:.3f} ± {s:.3f}" for m, s in zip(mean[c], sd[c])]
    return table.rename(columns={v: k for k, v in cols.items()})


@page_style
def figure_controls(res: Result):
    """Trained (solid) and untrained (dashed) accuracy against m (chain) and K (ER graphs), for
    the pooled probe and the per-position probes; bands: one sd over seeds."""
    import matplotlib.pyplot as plt

    runs = res.runs
    fig, axes = plt.subplots(2, 1, figsize=(PAGE_WIDTH, 8), sharey=True)
    for ax, (panel, x, label) in zip(axes, (("left", "n_observed", "observed variables m"),
                                            ("right", "n_latents", "latent variables K"))):
        sub = runs[runs.panel == panel]
        for i, (reading, (tr, un)) in enumerate(READINGS.items()):
            for col, style, tag in ((tr, "-o", "trained"), (un, "--s", "untrained")):
                per_seed = sub.groupby([x, "seed"])[col].mean().groupby(level=0)
                mean, sd = per_seed.mean(), per_seed.std().fillna(0)
                ax.plot(mean.index, mean, style, color=f"C{i}", label=f"{reading}, {tag}")
                ax.fill_between(mean.index, mean - sd, mean + sd, color=f"C{i}", alpha=0.15)
        ax.set(xlabel=label, title="chain" if panel == "left" else "ER graphs (all kinds)")
        ax.grid(alpha=0.3)
        ax.set_ylabel("probe accuracy")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=2)
    return fig


@page_style
def figure_layers(res: Result):
    """Pooled probe accuracy after each block, trained (solid) and untrained (dashed), one line
    per K of the ER graphs; bands: one sd over seeds."""
    import matplotlib.pyplot as plt

    runs = res.runs[res.runs.panel == "right"]
    layers = np.arange(1, n_layers(res) + 1)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 5.6))
    for i, (k, sub) in enumerate(runs.groupby("n_latents")):
        for tag, style in (("trained", "-o"), ("untrained", "--s")):
            per_seed = sub.groupby("seed")[[f"{tag}_layer{l}" for l in layers]].mean()
            mean, sd = per_seed.mean().to_numpy(), per_seed.std().fillna(0).to_numpy()
            ax.plot(layers, mean, style, color=f"C{i}", label=f"K = {k}, {tag}")
            ax.fill_between(layers, mean - sd, mean + sd, color=f"C{i}", alpha=0.12)
    ax.set(xticks=layers, xlabel="output of block (Linear-BatchNorm-ReLU)",
           ylabel="probe accuracy, pooled", title="ER graphs")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.22, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9.5)
    return fig


def table_diversity(res: Result) -> "pandas.DataFrame":
    """Per setting: |Z| = 2^K, the masked-bit task's token-side rank (mean over seeds) and
    whether it reaches |Z|, the rank Theorem 3.1's diversity condition needs."""
    runs = res.runs
    table = runs.groupby(["panel", "graph", "n_latents", "n_observed"], sort=False).agg(
        rank=("diversity_rank", "mean")).reset_index()
    table["|Z| needed"] = 2 ** table.n_latents
    table["meets it"] = np.where(table["rank"] >= table["|Z| needed"], "yes", "no")
    return table


def glue_numbers(res: Result, cfg: Config) -> dict[str, object]:
    """Glue (myst-nb) every number and verdict the chapter's prose quotes; returns them too."""
    from IPython.display import Markdown

    runs = res.runs
    values: dict[str, object] = {"n_seeds": runs.seed.nunique(), "n_layers": n_layers(res)}
    for panel in ("left", "right"):
        for reading, (tr, un) in READINGS.items():
            tag = f"{panel}_{reading.replace(' ', '_')}"
            gain = seed_gain(res, panel, tr, un)
            values[f"gain_{tag}"], values[f"gain_{tag}_se"] = gain.mean, gain.se
            values[f"verdict_{tag}"] = Markdown(HELPS(gain))
            values[f"acc_{tag}"] = runs[runs.panel == panel][tr].mean()
            values[f"acc_{tag}_untrained"] = runs[runs.panel == panel][un].mean()
        for l, name in ((1, "first"), (n_layers(res), "last")):
            gain = seed_gain(res, panel, f"trained_layer{l}", f"untrained_layer{l}")
            values[f"gain_{panel}_{name}"], values[f"gain_{panel}_{name}_se"] = gain.mean, gain.se
            values[f"verdict_{panel}_{name}"] = Markdown(HELPS(gain))
    pooled_hurts = seed_gain(res, "right", *READINGS["pooled"]).direction() == -1
    position_holds = seed_gain(res, "right", *READINGS["per position"]).direction() != -1
    values["pooling_verdict"] = Markdown(
        "a property of the pooled probe, not of what training learned: read per masked "
        "position, the trained network is at least as readable as the untrained one"
        if pooled_hurts and position_holds else
        "not explained by pooling: the per-position reading does not reverse it"
        if pooled_hurts else "absent: the pooled probe does not show training hurting")
    right = runs[runs.panel == "right"]
    values["per_position_minus_pooled"] = (right.trained_per_position - right.trained).mean()
    best = max(range(1, n_layers(res) + 1), key=lambda l: right[f"trained_layer{l}"].mean())
    values["best_layer"], values["best_layer_acc"] = best, right[f"trained_layer{best}"].mean()
    diversity = table_diversity(res)
    values["n_settings"] = len(diversity)
    values["n_meet"] = int((diversity["meets it"] == "yes").sum())
    values["rank_max"] = diversity["rank"].max()
    values["max_m"], values["min_z"] = runs.n_observed.max(), 2 ** runs.n_latents.min()
    return glue_values(values)
