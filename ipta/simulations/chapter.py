"""The simulations chapter (notebook ``02_simulations``): Figure 2, masked next-token MLPs on
data from random DAGs of binary latent concepts (paper section 6, appendix G.1).

Like every chapter module: :class:`Config`, :func:`setup`, :func:`run` returning a
:class:`Result`, then tables (``table_*``), figures (``figure_*``) and readings (``reading_*``).
The computation lives in :mod:`ipta.simulations.sweep` and the modules it imports.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from ipta.cache import get_or_compute
from ipta.config import Config as BaseConfig
from ipta.config import ConfigError, param
from ipta.notebook import setup_for
from ipta.simulations.sweep import results_frame, run_sweep


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    """Parameters of the simulations chapter (Figure 2 left and right)."""

    chain_latents: int = param(3, "latents in the chain of Figure 2 (left)", low=2, high=8)
    chain_observed: tuple[int, ...] = param(
        (2, 3, 4, 6, 9, 12), "observed-variable counts m of Figure 2 (left)", low=2, high=64)
    er_graphs: tuple[str, ...] = param(("ER1", "ER2", "ER3"), "Erdos-Renyi kinds of Figure 2 (right)",
                                       choices=("ER1", "ER2", "ER3", "ER4"))
    er_latents: tuple[int, ...] = param((4, 5, 6, 7, 8), "latent sizes K of Figure 2 (right)",
                                        low=2, high=8)
    er_observed_per_latent: int = param(3, "Figure 2 (right) observes m = this times K variables",
                                        low=1, high=8)
    seeds: tuple[int, ...] = param((0, 1, 2, 3, 4), "seeds: problem, init and data of each run", low=0)
    steps: int = param(2000, "Adam steps per run (default: where the loss has flattened for "
                       "K <= 7 and falls slowly for K = 8)", low=1)
    batch_size: int = param(64, "samples per step (fresh from the DAG each step)", low=2)
    lr: float = param(1e-3, "Adam learning rate (illegible in the paper; our choice)", low=1e-6, high=1.0)
    hidden: int = param(128, "width of each MLP layer (paper: 256; on 2 CPU cores 128 reaches a "
                        "lower loss in the same time)", low=2)
    n_layers: int = param(3, "Linear-BatchNorm-ReLU blocks (paper: 3)", low=1, high=8)
    embed_dim: int = param(64, "width of the position-and-state token embedding", low=1)
    n_fit: int = param(500, "samples to fit each logistic-regression probe", low=20)
    n_score: int = param(500, "separate samples to score each probe", low=20)
    probe_c: float = param(1.0, "inverse L2 strength C of the probes (scikit-learn default)", low=1e-6)
    table_low: float = param(0.2, "lower end of the Bernoulli parameters' uniform law", low=0.0, high=1.0)
    table_high: float = param(0.8, "upper end of the Bernoulli parameters' uniform law", low=0.0, high=1.0)
    device: Literal["auto", "cpu", "cuda", "mps"] = param("auto", "where to train",
                                                          affects_results=False)

    PROFILES = {
        "smoke": {"chain_observed": (2, 6), "er_graphs": ("ER1", "ER3"), "er_latents": (4, 5),
                  "seeds": (0, 1), "steps": 40, "hidden": 64, "n_fit": 200, "n_score": 200},
        "paper": {"chain_observed": (2, 3, 4, 5, 6, 8, 10, 12, 16), "steps": 3000,
                  "batch_size": 256, "hidden": 256, "n_fit": 4000, "n_score": 4000},
    }

    def validate(self) -> None:
        if self.table_low > self.table_high:
            raise ConfigError(f"parameter 'table_low': {self.table_low} exceeds table_high "
                              f"{self.table_high}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"parameter 'seeds': {self.seeds} repeats a seed")


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


def reading(res: Result) -> str:
    """The page's closing reading, as Markdown bullets computed from the run."""
    table = table_summary(res)
    left = table[table.panel == "left"]
    corr = left_correlation(res)
    right = res.runs[res.runs.panel == "right"]
    by_k = right.groupby("n_latents")[["trained", "untrained", "raw", "bayes_masked"]].mean()
    k_lo, k_hi = by_k.index.min(), by_k.index.max()
    gap_right = (right.trained - right.untrained).mean()
    left_gap = (left.trained_mean - left.untrained_mean).abs().max()
    return (
        f"- Left panel: trained accuracy and posterior concentration correlate at {corr:.2f}; the "
        f"trained and untrained lines differ by at most {left_gap:.3f} at any m.\n"
        f"- Right panel: trained accuracy goes from {by_k.trained[k_lo]:.3f} at K = {k_lo} to "
        f"{by_k.trained[k_hi]:.3f} at K = {k_hi} (exact ceiling {by_k.bayes_masked[k_hi]:.3f}); "
        f"the untrained network goes from {by_k.untrained[k_lo]:.3f} to "
        f"{by_k.untrained[k_hi]:.3f}, the raw bits from {by_k.raw[k_lo]:.3f} to "
        f"{by_k.raw[k_hi]:.3f}.\n"
        f"- Trained minus untrained, averaged over the right panel's runs: {gap_right:+.3f}.")


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
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, (panel, x) in zip(axes, (("left", "n_observed"), ("right", "n_latents"))):
        sub = df[df.panel == panel]
        symbol = "m" if x == "n_observed" else "K"
        for value, rows in sub.groupby(x).groups.items():
            ax.plot(steps, excess_ST[rows].mean(0), label=f"{symbol} = {value}")
        ax.set_yscale("log")
        ax.set_xlabel("Adam step")
        ax.set_title("chain (left panel)" if panel == "left" else "ER graphs (right panel)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training loss minus exact floor (nats)")
    fig.tight_layout()
    return fig


def figure_2(res: Result):
    """Figure 2, left (chain, accuracy vs m) and right (one axes per ERk, accuracy vs K).

    Under each x tick: the exact posterior concentration E_x[max_c P(c|x)] of that setting.
    """
    import matplotlib.pyplot as plt

    df = res.runs
    graphs = sorted(df[df.panel == "right"].graph.unique())
    fig, axes = plt.subplots(1, 1 + len(graphs), figsize=(4.2 * (1 + len(graphs)), 3.8),
                             sharey=True, squeeze=False)
    left = df[df.panel == "left"]
    _panel(axes[0, 0], left, "n_observed", f"chain of {left.n_latents.iloc[0]} latents")
    axes[0, 0].set_xlabel("observed variables m\n(posterior concentration)")
    axes[0, 0].set_ylabel("probe accuracy (mean over latents)")
    for ax, g in zip(axes[0, 1:], graphs):
        sub = df[df.graph == g]
        _panel(ax, sub, "n_latents", f"{g}, m = {sub.n_observed.iloc[0] // sub.n_latents.iloc[0]}K")
        ax.set_xlabel("latent variables K\n(posterior concentration)")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
