"""Running the LLM-probing chapter: every model x concept set x mode, tables and Figure-3 heatmaps.

The arithmetic lives in :mod:`ipta.probing`; this module loops over the configuration, measures
extraction throughput, and lays results out the way the paper's Figure 3 does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ipta.cache import get_or_compute
from ipta.concepts import ConceptDataError, load_concept_set, paper_set_available
from ipta.models import model_fingerprint
from ipta.probing import ProbingConfig, paper_mode, pair_representations, rigorous_mode


@dataclass
class ProbingRun:
    """Everything the chapter shows: per (model, set) the paper result and the rigorous rows."""

    paper: dict[tuple[str, str], dict] = field(default_factory=dict)
    rigorous_rows: list[dict] = field(default_factory=list)
    rigorous_M: dict[tuple[str, str], dict[float, np.ndarray]] = field(default_factory=dict)
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reports: dict[str, list[dict]] = field(default_factory=dict)
    throughput: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def available_sets(cfg: ProbingConfig) -> tuple[dict, list[str]]:
    """The concept sets asked for that can be had, and a note for each that cannot."""
    sets, notes = {}, []
    for source in cfg.concept_sources:
        if source == "paper" and not paper_set_available(cfg.word_pairs_dir):
            notes.append("The paper's word pairs were not found (set $IPTA_WORD_PAIRS_DIR or the "
                         "parameter word_pairs_dir); only our embedded set is shown.")
            continue
        try:
            concept_set = load_concept_set(source, cfg.word_pairs_dir)
        except ConceptDataError as e:
            notes.append(f"Concept set {source!r} unavailable: {e}")
            continue
        sets[source] = concept_set.subset(cfg.concepts) if cfg.concepts else concept_set
    return sets, notes


def measure_throughput(model: str, words: list[str], cfg: ProbingConfig, n: int = 64) -> float:
    """Words per second of uncached extraction on the first ``n`` words (model load excluded)."""
    from ipta.activations import word_representations
    from ipta.models import load_model

    loaded = load_model(model, revision=cfg.revision, device=cfg.device, dtype=cfg.dtype)
    sample = words[:n]
    start = time.perf_counter()
    word_representations(*loaded, sample, layer=cfg.layer, position=cfg.position,
                         template=cfg.template, batch_size=cfg.batch_size, progress=False)
    return len(sample) / (time.perf_counter() - start)


def _cached_paper(reps, cfg: ProbingConfig, key: dict) -> dict:
    """paper_mode through the cache: the 27 fits are redone only when a setting changes."""

    def compute():
        res = paper_mode(reps, cfg.C, cfg.max_iter)
        return ({k: v for k, v in res.items() if isinstance(v, np.ndarray)},
                {k: v for k, v in res.items() if not isinstance(v, np.ndarray)})

    arrays, meta = get_or_compute("probing_paper", {**key, "C": cfg.C}, compute)
    return {**arrays, **meta}


def _cached_rigorous(reps, cfg: ProbingConfig, key: dict):
    """rigorous_mode through the cache (rows in meta, seed-mean matrices as arrays)."""

    def compute():
        rows, mean_M = rigorous_mode(reps, cfg.C_sweep, cfg.seeds, cfg.test_fraction,
                                     cfg.max_iter)
        return {f"M_{i}": mean_M[C] for i, C in enumerate(cfg.C_sweep)}, {"rows": rows}

    spec = {**key, "C_sweep": cfg.C_sweep, "seeds": cfg.seeds,
            "test_fraction": cfg.test_fraction}
    arrays, meta = get_or_compute("probing_rigorous", spec, compute)
    rows = [{k: (np.nan if v is None else v) for k, v in r.items()} for r in meta["rows"]]
    return rows, {C: arrays[f"M_{i}"] for i, C in enumerate(cfg.C_sweep)}


def run_probing(cfg: ProbingConfig, throughput: bool = True) -> ProbingRun:
    """All models x available concept sets x modes of ``cfg``."""
    run = ProbingRun()
    sets, run.notes = available_sets(cfg)
    for source, concept_set in sets.items():
        run.names[source] = concept_set.names
        run.reports[source] = concept_set.report()
    for model in cfg.models:
        for source, concept_set in sets.items():
            reps = pair_representations(concept_set, model, cfg)
            key = {"model": model_fingerprint(model, cfg.revision), "set": concept_set.checksum(),
                   "layer": cfg.layer, "position": cfg.position, "template": cfg.template,
                   "dtype": cfg.dtype, "max_iter": cfg.max_iter}
            if "paper" in cfg.modes:
                run.paper[model, source] = _cached_paper(reps, cfg, key)
            if "rigorous" in cfg.modes:
                rows, mean_M = _cached_rigorous(reps, cfg, key)
                run.rigorous_rows += [{"model": model, "set": source, **r} for r in rows]
                run.rigorous_M[model, source] = mean_M
        if throughput and sets:
            first = next(iter(sets.values()))
            words = list(dict.fromkeys(w for n in first.names for p in first.pairs[n] for w in p))
            run.throughput[model] = measure_throughput(model, words, cfg)
    return run


def summary_table(run: ProbingRun):
    """One row per model, set, mode, matrix kind and C: metrics as mean and sd over seeds."""
    import pandas as pd

    paper_rows = [{"model": m, "set": s, "mode": "paper", "kind": "probe", "C": res["C"],
                   "diag": res["diag"], "offdiag_abs": res["offdiag_abs"],
                   "diag_is_row_max": res["diag_is_row_max"],
                   "frobenius_gap": res["frobenius_gap"]}
                  for (m, s), res in run.paper.items()]
    table = pd.DataFrame(paper_rows)
    if run.rigorous_rows:
        rig = pd.DataFrame(run.rigorous_rows).assign(mode="rigorous")
        metrics = [c for c in ("diag", "offdiag_abs", "diag_is_row_max", "frobenius_gap",
                               "heldout_accuracy") if c in rig]
        grouped = rig.groupby(["model", "set", "mode", "kind", "C"], dropna=False, sort=False)
        agg = grouped[metrics].agg(["mean", "std"])
        agg.columns = [f"{a}" if b == "mean" else f"{a} sd" for a, b in agg.columns]
        table = pd.concat([table, agg.reset_index()], ignore_index=True)
    metrics = [c for c in table.columns if c not in ("model", "set", "mode", "kind", "C")]
    return table.round({c: 3 for c in metrics})


def plot_cos_heatmaps(matrices: dict[str, np.ndarray], names: tuple[str, ...], ncols: int = 2,
                      vmin: float = 0.0, vmax: float = 1.0):
    """Heatmaps of cos(a_i, w_j) laid out like Figure 3 (coolwarm, rows a_i, columns w_j)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    n = len(matrices)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    size = 3.0 + 0.22 * len(names)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax, (title, M_KK) in zip(axes.flat, matrices.items()):
        sns.heatmap(M_KK, ax=ax, cmap="coolwarm", vmin=vmin, vmax=vmax, square=True,
                    xticklabels=names, yticklabels=names, cbar_kws={"shrink": 0.6})
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("probe weight $w_j$")
        ax.set_ylabel("concept direction $a_i$")
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_c_sweep(table):
    """Mean diagonal and mean |off-diagonal| against C, per model and set, with the null."""
    import matplotlib.pyplot as plt

    rig = table[(table["mode"] == "rigorous") & table["kind"].isin(["probe", "permuted-label null"])]
    groups = list(rig.groupby(["model", "set"], sort=False))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.4), squeeze=False)
    for ax, ((model, source), g) in zip(axes.flat, groups):
        for kind, style in (("probe", "-o"), ("permuted-label null", ":x")):
            part = g[g["kind"] == kind].sort_values("C")
            for metric, colour in (("diag", "C3"), ("offdiag_abs", "C0")):
                ax.errorbar(part["C"], part[metric], yerr=part[f"{metric} sd"], fmt=style,
                            color=colour, label=f"{kind}: {metric}", capsize=2)
        ax.set_xscale("log")
        ax.set_xlabel("C (inverse L2 strength)")
        ax.set_title(f"{model} · {source}", fontsize=9)
        ax.set_ylim(-0.2, 1.05)
    axes.flat[0].set_ylabel("cosine")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def closing_summary(table, run: ProbingRun, cfg: ProbingConfig):
    """Paper mode, rigorous probe at min and max C, and the null at max C; plus throughput."""
    c_lo, c_hi = min(cfg.C_sweep), max(cfg.C_sweep)
    keep = ((table["mode"] == "paper")
            | ((table["kind"] == "probe") & table["C"].isin([c_lo, c_hi]))
            | ((table["kind"] == "permuted-label null") & (table["C"] == c_hi)))
    cols = [c for c in ("model", "set", "mode", "kind", "C", "diag", "diag sd", "offdiag_abs",
                        "diag_is_row_max", "frobenius_gap", "heldout_accuracy") if c in table]
    out = table.loc[keep, cols].copy()
    out["words/s"] = out["model"].map(run.throughput).round(0)
    return out.reset_index(drop=True)
