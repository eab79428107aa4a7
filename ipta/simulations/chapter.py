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
from ipta.exercises import Check, checker
from ipta.figures import PAGE_WIDTH, page_style, save_figure  # noqa: F401 (notebook: chapter.save_figure)
from ipta.notebook import setup_for
from ipta.prose import GLUED as glued  # noqa: F401 (notebook: v = chapter.glued)
from ipta.prose import glue_values
from ipta.simulations.config import Config
from ipta.simulations.figures import (figure_2, figure_controls, figure_layers,  # noqa: F401
                                      figure_training_loss, figure_unseen)
from ipta.simulations.sweep import READINGS, UNSEEN, n_layers, results_frame, run_sweep
from ipta.stats import HELPS, Difference, directions
from ipta.tables import mean_sd


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
def table_summary(res: Result) -> "pandas.DataFrame":
    """Mean and standard deviation over seeds of each setting's accuracies, with exact measures."""
    df = res.runs
    keys = ["panel", "graph", "n_latents", "n_observed"]
    cols = ["trained", "untrained", "raw"]
    stats = df.groupby(keys)[cols].agg(["mean", "std"])
    stats.columns = [f"{c}_{s}" for c, s in stats.columns]
    exact = df.groupby(keys)[["posterior_concentration", "identified_share", "bayes_masked"]].mean()
    return stats.join(exact).reset_index()


def table_accuracy(res: Result) -> "pandas.DataFrame":
    """:func:`table_summary` as the page shows it: each accuracy as mean ± sd over seeds, and
    the exact measures, under short headers."""
    import pandas as pd

    t = table_summary(res)
    return pd.DataFrame({
        "panel": t.panel, "graph": t.graph, "latents": t.n_latents, "observed": t.n_observed,
        **{name: mean_sd(t[f"{col}_mean"], t[f"{col}_std"])
           for name, col in (("trained", "trained"), ("untrained", "untrained"),
                             ("raw bits", "raw"))},
        "posterior concentration": t.posterior_concentration,
        "identified share": t.identified_share, "Bayes ceiling": t.bayes_masked})


# ----------------------------------------------------------------------- the controls
def run_gain(res: Result, panel: str, trained: str, untrained: str) -> Difference:
    """Trained minus untrained accuracy over a panel's runs: every run is its own random problem
    and initialisation, trained and untrained from the same start, so each run pairs the two."""
    runs = res.runs[res.runs.panel == panel]
    return Difference.of((runs[trained] - runs[untrained]).to_numpy())


def table_controls(res: Result) -> "pandas.DataFrame":
    """Per panel and size: trained and untrained accuracy, pooled over masked positions and per
    masked position, and per layer (pooled), as mean ± sd over seeds."""
    cols = {"pooled, trained": "trained", "pooled, untrained": "untrained",
            "per position, trained": "trained_per_position",
            "per position, untrained": "untrained_per_position"}
    return _seed_table(res, cols)


def table_unseen(res: Result) -> "pandas.DataFrame":
    """Per panel and size: trained and untrained accuracy on latent configurations held out of
    the probes' fit, pooled and per masked position, and the raw bits', as mean ± sd over
    seeds."""
    return _seed_table(res, {"pooled, trained": "trained_unseen",
                             "pooled, untrained": "untrained_unseen",
                             "per position, trained": "trained_per_position_unseen",
                             "per position, untrained": "untrained_per_position_unseen",
                             "raw bits": "raw_unseen"})


def table_layers(res: Result) -> "pandas.DataFrame":
    """Per panel and size: trained and untrained accuracy of the pooled probe after each block,
    as mean ± sd over seeds."""
    cols = {}
    for l in range(1, n_layers(res.runs) + 1):
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
    values: dict[str, object] = {"n_seeds": runs.seed.nunique(), "n_layers": n_layers(res.runs)}
    gains = {}
    for panel in ("left", "right"):
        for reading, (tr, un) in {**READINGS, **UNSEEN}.items():
            tag = f"{panel}_{reading.replace(', ', '_').replace(' ', '_')}"
            gains[tag] = run_gain(res, panel, tr, un)
            values[f"acc_{tag}"] = runs[runs.panel == panel][tr].mean()
            values[f"acc_{tag}_untrained"] = runs[runs.panel == panel][un].mean()
        for l, name in ((1, "first"), (n_layers(res.runs), "last")):
            gains[f"{panel}_{name}"] = run_gain(res, panel, f"trained_layer{l}",
                                                f"untrained_layer{l}")
    verdicts = directions(gains)  # Holm over every verdict of the page
    for tag, gain in gains.items():
        values[f"gain_{tag}"], values[f"gain_{tag}_se"] = gain.mean, gain.se
        values[f"verdict_{tag}"] = Markdown(HELPS(verdicts[tag]))
    values["n_runs_right"] = gains["right_pooled"].n
    for panel in ("left", "right"):
        values[f"acc_{panel}_raw_unseen"] = runs[runs.panel == panel]["raw_unseen"].mean()
    values["n_verdicts"] = len(gains)
    unseen_verdict = verdicts["right_per_position_unseen"]
    values["finding_figure2"] = {
        1: "holds: training makes the latents readable on configurations no probe saw",
        0: "not supported at this scale: trained and untrained networks read unseen "
           "configurations alike",
        -1: "contradicted here: the untrained network reads unseen configurations better",
        None: "undecided: too few runs"}[unseen_verdict]
    pooled_hurts = verdicts["right_pooled"] == -1
    position_holds = verdicts["right_per_position"] != -1
    values["pooling_verdict"] = Markdown(
        "a property of the pooled probe, not of what training learned: read per masked "
        "position, the trained network is at least as readable as the untrained one"
        if pooled_hurts and position_holds else
        "not explained by pooling: the per-position reading does not reverse it"
        if pooled_hurts else "absent: the pooled probe does not show training hurting")
    right = runs[runs.panel == "right"]
    values["per_position_minus_pooled"] = (right.trained_per_position - right.trained).mean()
    best = max(range(1, n_layers(res.runs) + 1), key=lambda l: right[f"trained_layer{l}"].mean())
    values["best_layer"], values["best_layer_acc"] = best, right[f"trained_layer{best}"].mean()
    diversity = table_diversity(res)
    values["n_settings"] = len(diversity)
    values["n_meet"] = int((diversity["meets it"] == "yes").sum())
    values["rank_max"] = diversity["rank"].max()
    values["max_m"], values["min_z"] = runs.n_observed.max(), 2 ** runs.n_latents.min()
    return glue_values(values)


# ----------------------------------------------------------------------- exercises
def exercise_gain_by_m(res: Result) -> dict[int, float]:
    """Exercise sim-ex-gain-by-m: per number of observed variables, the mean over the left
    panel's runs of trained minus untrained accuracy."""
    left = res.runs[res.runs.panel == "left"]
    gain = (left.trained - left.untrained).groupby(left.n_observed).mean()
    return {int(m): float(v) for m, v in gain.items()}


def exercise_below_ceiling(res: Result) -> dict[tuple[str, str, int, int], float]:
    """Exercise sim-ex-ceiling: the three runs whose trained probe is furthest below the exact
    ceiling, keyed (panel, graph, n_observed, seed), with the gap."""
    runs = res.runs.assign(below=res.runs.bayes_masked - res.runs.trained).nlargest(3, "below")
    return {(r.panel, r.graph, int(r.n_observed), int(r.seed)): float(r.below)
            for r in runs.itertuples()}


EXERCISES = {
    "sim-ex-gain-by-m": Check("a dict {number of observed variables: mean over the left "
                              "panel's runs of trained minus untrained}", exercise_gain_by_m),
    "sim-ex-ceiling": Check("a dict {(panel, graph, n_observed, seed): bayes_masked minus "
                            "trained} for the three runs furthest below the ceiling",
                            exercise_below_ceiling),
}
check_exercise = checker(EXERCISES)
