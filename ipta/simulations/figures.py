"""The simulations chapter's figures (Figure 2, training, the probe readings), drawn at the
book's page width; the chapter module hands them to the notebook. ``res`` is the chapter's
Result: a frame of runs (``res.runs``) and their losses (``res.loss_ST``)."""

from __future__ import annotations

import numpy as np

from ipta.figures import PAGE_WIDTH, page_style
from ipta.simulations.sweep import READINGS, SERIES, UNSEEN, n_layers


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
def figure_training_loss(res, window: int = 50):
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
def figure_2(res):
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


@page_style
def figure_controls(res):
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
def figure_layers(res):
    """Pooled probe accuracy after each block, trained (solid) and untrained (dashed), one line
    per K of the ER graphs; bands: one sd over seeds."""
    import matplotlib.pyplot as plt

    runs = res.runs[res.runs.panel == "right"]
    layers = np.arange(1, n_layers(res.runs) + 1)
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

@page_style
def figure_unseen(res):
    """The readout that can fail: trained (solid) and untrained (dashed) accuracy on latent
    configurations held out of the probes' fit, pooled and per masked position, with the raw
    bits' (dotted), against m (chain) and K (ER graphs); bands: one sd over seeds."""
    import matplotlib.pyplot as plt

    runs = res.runs
    fig, axes = plt.subplots(2, 1, figsize=(PAGE_WIDTH, 8), sharey=True)
    for ax, (panel, x, label) in zip(axes, (("left", "n_observed", "observed variables m"),
                                            ("right", "n_latents", "latent variables K"))):
        sub = runs[runs.panel == panel]
        lines = [(f"{reading}, {tag}", col, style, f"C{i}")
                 for i, (reading, pair) in enumerate(UNSEEN.items())
                 for col, style, tag in zip(pair, ("-o", "--s"), ("trained", "untrained"))]
        for name, col, style, colour in [*lines, ("raw bits, unseen", "raw_unseen", ":^", "k")]:
            per_seed = sub.groupby([x, "seed"])[col].mean().groupby(level=0)
            mean, sd = per_seed.mean(), per_seed.std().fillna(0)
            ax.plot(mean.index, mean, style, color=colour, label=name)
            ax.fill_between(mean.index, mean - sd, mean + sd, color=colour, alpha=0.12)
        ax.axhline(0.5, color="grey", lw=1)
        ax.set(xlabel=label, ylabel="probe accuracy, unseen",
               title="chain" if panel == "left" else "ER graphs (all kinds)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9.5)
    return fig
