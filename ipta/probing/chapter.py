"""The LLM-probing chapter (notebook ``03_llm_probing``): Figure 3 and appendix J, every model x
concept set x mode, with the rigorous mode's controls.

Like every chapter module: :class:`Config`, :func:`setup`, :func:`run` returning a
:class:`Result`, then tables (``table_*``) and figures (``figure_*``). The probe arithmetic lives
in :mod:`ipta.probing.alignment`; representations come from :mod:`ipta.lm`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ipta.cache import call_spec, get_or_compute
from ipta.figures import PAGE_WIDTH, glue_figure, page_style  # noqa: F401 (notebook: chapter.glue_figure)
from ipta.notebook import glue_values, setup_for
from ipta.lm.concepts import ConceptSet, load_concept_set, paper_directory_named
from ipta.lm.models import LazyModel
from ipta.probing.alignment import PairReps, paper_mode, rigorous_mode
from ipta.probing.config import Config


setup = setup_for(Config)
"""``setup(profile, params)``: the chapter's validated settings, shown as the page's first output."""


def pair_representations(concepts: ConceptSet, model: str, cfg: Config,
                         loaded=None, progress: bool = True) -> PairReps:
    """Run every distinct word of the set through the model once (cached) and gather the pairs."""
    from ipta.lm.activations import cached_word_representations

    words = list(dict.fromkeys(w for n in concepts.names for p in concepts.pairs[n] for w in p))
    reps_ND = cached_word_representations(
        model, words, revision=cfg.revision, layer=cfg.layer, position=cfg.position,
        template=cfg.template, device=cfg.device, dtype=cfg.dtype, batch_size=cfg.batch_size,
        progress=progress, loaded=loaded)
    row = {w: i for i, w in enumerate(words)}
    base = tuple(reps_ND[[row[b] for b, _ in concepts.pairs[n]]] for n in concepts.names)
    target = tuple(reps_ND[[row[t] for _, t in concepts.pairs[n]]] for n in concepts.names)
    words = tuple(tuple(map(tuple, concepts.pairs[n])) for n in concepts.names)
    return PairReps(concepts.names, base, target, words)


@dataclass
class Result:
    """Everything the chapter shows: per (model, set) the paper result and the rigorous rows."""

    paper: dict[tuple[str, str], dict] = field(default_factory=dict)
    rigorous_rows: list[dict] = field(default_factory=list)
    rigorous_M: dict[tuple[str, str], dict[float, np.ndarray]] = field(default_factory=dict)
    """Per (model, set) and C: the seed-mean held-out cos(a_i, w_j)."""
    rigorous_concepts: dict[tuple[str, str], dict[str, np.ndarray]] = field(default_factory=dict)
    """Per (model, set): seed means of each concept's split-half reliability and pair counts."""
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reports: dict[str, list[dict]] = field(default_factory=dict)
    throughput: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def available_sets(cfg: Config) -> tuple[dict, list[str]]:
    """The concept sets asked for that can be had, and a note for each that cannot."""
    sets, notes = {}, []
    for source in cfg.concept_sources:
        if source == "paper" and not paper_directory_named(cfg.word_pairs_dir):
            notes.append("No folder of the paper's word pairs was named (set "
                         "$IPTA_WORD_PAIRS_DIR or the parameter word_pairs_dir), so the "
                         "paper's set is not shown.")
            continue
        concept_set = load_concept_set(source, cfg.word_pairs_dir)  # a named folder must work
        sets[source] = concept_set.subset(cfg.concepts) if cfg.concepts else concept_set
    return sets, notes


def measure_throughput(loaded: tuple[Any, Any], words: list[str], cfg: Config,
                       n: int = 64) -> float:
    """Words per second of uncached extraction on the first ``n`` words (model load excluded)."""
    from ipta.lm.activations import word_representations

    sample = words[:n]
    start = time.perf_counter()
    word_representations(*loaded, sample, layer=cfg.layer, position=cfg.position,
                         template=cfg.template, batch_size=cfg.batch_size, progress=False)
    return len(sample) / (time.perf_counter() - start)


def _cached_paper(reps: PairReps, cfg: Config) -> dict:
    """paper_mode through the cache: the fits are redone only when their inputs change."""
    args = {"reps": reps, "C": cfg.C, "max_iter": cfg.max_iter}

    def compute():
        res = paper_mode(**args)
        return ({k: v for k, v in res.items() if isinstance(v, np.ndarray)},
                {k: v for k, v in res.items() if not isinstance(v, np.ndarray)})

    arrays, meta = get_or_compute("probing_paper", call_spec(paper_mode, args), compute,
                                  code=("ipta.probing.alignment",))
    return {**arrays, **meta}


def _cached_rigorous(reps: PairReps, cfg: Config):
    """rigorous_mode through the cache (rows in meta, seed-mean matrices as arrays)."""
    args = {"reps": reps, "Cs": cfg.C_sweep, "seeds": cfg.seeds,
            "test_fraction": cfg.test_fraction, "max_iter": cfg.rigorous_max_iter}

    def compute():
        rows, means = rigorous_mode(**args)
        return means, {"rows": rows}

    arrays, meta = get_or_compute("probing_rigorous", call_spec(rigorous_mode, args), compute,
                                  code=("ipta.probing.alignment",))
    rows = [{k: (np.nan if v is None else v) for k, v in r.items()} for r in meta["rows"]]
    concepts = {k: arrays[k] for k in ("reliability_K", "n_train_K", "n_test_K")}
    return rows, {C: arrays[f"M_{i}"] for i, C in enumerate(cfg.C_sweep)}, concepts


def run(cfg: Config, progress: bool = True) -> Result:
    """All models x available concept sets x modes of ``cfg``; each model is loaded at most once."""
    res = Result()
    sets, res.notes = available_sets(cfg)
    for source, concept_set in sets.items():
        res.names[source] = concept_set.names
        res.reports[source] = concept_set.report()
    for model in cfg.models:
        loader = LazyModel(model, revision=cfg.revision, device=cfg.device, dtype=cfg.dtype,
                           device_map=cfg.device_map)
        for source, concept_set in sets.items():
            reps = pair_representations(concept_set, model, cfg, loaded=loader,
                                        progress=progress)
            if "paper" in cfg.modes:
                res.paper[model, source] = _cached_paper(reps, cfg)
            if "rigorous" in cfg.modes:
                rows, mean_M, concepts = _cached_rigorous(reps, cfg)
                res.rigorous_rows += [{"model": model, "set": source, **r} for r in rows]
                res.rigorous_M[model, source] = mean_M
                res.rigorous_concepts[model, source] = concepts
        if cfg.throughput and sets:
            first = next(iter(sets.values()))
            words = list(dict.fromkeys(w for n in first.names for p in first.pairs[n] for w in p))
            res.throughput[model] = measure_throughput(loader(), words, cfg)
        del loader  # free the model before the next one loads
    return res


def describe(res: Result) -> str:
    """The models and concept sets run, and what could not be run."""
    pairs = sorted({key for key in [*res.paper, *res.rigorous_M]})
    lines = [f"{model} on the {source} pairs ({len(res.names[source])} concepts)"
             for model, source in pairs]
    return "\n".join(lines + [f"note: {note}" for note in res.notes]) or "nothing was run"


def table_counts(res: Result) -> "pandas.DataFrame":
    """Pairs per concept in each concept set (with duplicates and identical pairs)."""
    import pandas as pd

    return pd.concat({s: pd.DataFrame(r).set_index("concept") for s, r in res.reports.items()},
                     axis=1)


def table_summary(res: Result):
    """One row per model, set, mode, matrix kind and C: metrics as mean and sd over seeds."""
    import pandas as pd

    paper_rows = [{"model": m, "set": s, "mode": "paper", "kind": "probe", "C": r["C"],
                   "diag": r["diag"], "offdiag_abs": r["offdiag_abs"],
                   "diag_is_row_max": r["diag_is_row_max"],
                   "frobenius_gap": r["frobenius_gap"], "converged": r["converged"]}
                  for (m, s), r in res.paper.items()]
    table = pd.DataFrame(paper_rows)
    if res.rigorous_rows:
        rig = pd.DataFrame(res.rigorous_rows).assign(mode="rigorous")
        metrics = [c for c in ("diag", "offdiag_abs", "diag_is_row_max", "frobenius_gap",
                               "heldout_accuracy", "converged") if c in rig]
        grouped = rig.groupby(["model", "set", "mode", "kind", "C"], dropna=False, sort=False)
        agg = grouped[metrics].agg(["mean", "std"])
        agg.columns = [f"{a}" if b == "mean" else f"{a} sd" for a, b in agg.columns]
        table = pd.concat([table, agg.reset_index()], ignore_index=True)
    metrics = [c for c in table.columns if c not in ("model", "set", "mode", "kind", "C")]
    return table.round({c: 3 for c in metrics})


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
def figure_paper_heatmaps(res: Result):
    """Figure 3 as the authors compute it: one heatmap per model and concept set (paper mode),
    on the same -1..1 colour scale as the rigorous mode's."""
    names = res.names[next(iter(res.names))]
    return figure_cos_heatmaps({f"{m} · {s} pairs · C={r['C']:g}": r["M"]
                                for (m, s), r in res.paper.items()}, names,
                               vmin=-1.0, vmax=1.0)


@page_style
def figure_rigorous_heatmaps(res: Result, cfg: Config):
    """The rigorous mode's seed-mean held-out matrices at the largest C: rows are directions
    a_i from held-out pairs, columns probes w_j fitted on training pairs (-1..1 colour scale)."""
    names = res.names[next(iter(res.names))]
    c_max = max(cfg.C_sweep)
    return figure_cos_heatmaps({f"{m} · {s} pairs · C={c_max:g}\nrows: held-out a_i, "
                                f"columns: training w_j": Ms[c_max]
                                for (m, s), Ms in res.rigorous_M.items()}, names,
                               vmin=-1.0, vmax=1.0)


def table_reliability(res: Result) -> "pandas.DataFrame":
    """Per concept and (model, set): the split-half reliability cos(a_train, a_test), which
    bounds the held-out diagonal, and the pairs on each side (means over seeds)."""
    import pandas as pd

    frames = {}
    for (model, source), c in res.rigorous_concepts.items():
        frames[model, source] = pd.DataFrame(
            {"reliability": c["reliability_K"].round(3), "train pairs": c["n_train_K"].round(1),
             "held-out pairs": c["n_test_K"].round(1)}, index=list(res.names[source]))
    return pd.concat(frames, axis=1)


@page_style
def figure_c_sweep(table):
    """Mean diagonal and mean |off-diagonal| against C, per model and set, with the null."""
    import matplotlib.pyplot as plt

    rig = table[table["mode"] == "rigorous"]
    groups = list(rig.groupby(["model", "set"], sort=False))
    ncols = min(2, len(groups))
    nrows = -(-len(groups) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PAGE_WIDTH, 3.6 * nrows + 1.3),
                             sharey=True, squeeze=False)
    for ax, ((model, source), g) in zip(axes.flat, groups):
        ceiling = table[(table["model"] == model) & (table["set"] == source)
                        & table["kind"].str.startswith("ceiling")]["diag"]
        if len(ceiling):
            ax.axhline(float(ceiling.iloc[0]), color="C3", lw=1, ls="--",
                       label="ceiling: split-half reliability")
        for kind, style in (("probe", "-o"), ("permuted-label null", ":x")):
            part = g[g["kind"] == kind].sort_values("C")
            for metric, colour in (("diag", "C3"), ("offdiag_abs", "C0")):
                if kind != "probe" and metric == "offdiag_abs":
                    continue
                ax.errorbar(part["C"], part[metric], yerr=part[f"{metric} sd"], fmt=style,
                            color=colour, label=f"{kind}: {metric}", capsize=2)
        ax.set_xscale("log")
        ax.set_xlabel("C (inverse L2 strength)")
        ax.set_title(f"{model} · {source}")
        ax.set_ylim(-0.2, 1.05)
    for ax in axes[:, 0]:
        ax.set_ylabel("cosine")
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    labels = [lab.replace("diag", "mean diagonal").replace("offdiag_abs", "mean |off-diagonal|")
              for lab in labels]
    fig.tight_layout(rect=(0, 1.3 / (3.6 * nrows + 1.3), 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=2)
    return fig


def table_closing(table, res: Result, cfg: Config):
    """Paper mode, rigorous probe at min and max C, and the null at max C; plus throughput."""
    c_lo, c_hi = min(cfg.C_sweep), max(cfg.C_sweep)
    keep = ((table["mode"] == "paper") | table["kind"].str.startswith("ceiling")
            | ((table["kind"] == "probe") & table["C"].isin([c_lo, c_hi]))
            | ((table["kind"] == "permuted-label null") & (table["C"] == c_hi)))
    cols = [c for c in ("model", "set", "mode", "kind", "C", "diag", "diag sd", "offdiag_abs",
                        "diag_is_row_max", "frobenius_gap", "heldout_accuracy", "converged")
            if c in table]
    out = table.loc[keep, cols].copy()
    out["words/s"] = out["model"].map(res.throughput).round(0)
    return out.reset_index(drop=True)


def _diag(table, model: str, source: str, C: float | None, kind: str = "probe") -> float:
    """The rigorous mode's mean diagonal of one matrix kind (at C, or with no C)."""
    rows = table[(table["model"] == model) & (table["set"] == source)
                 & (table["mode"] == "rigorous") & (table["kind"] == kind)
                 & ((table["C"] == C) if C is not None else table["C"].isna())]
    return float(rows["diag"].iloc[0]) if len(rows) else float("nan")


GLUED_NUMBERS = ("paper_diag", "paper_off", "paper_converged", "ceiling", "same_lo", "held_lo",
                 "held_hi", "held_hi_sd", "off_hi", "null_hi", "random", "acc_hi",
                 "share_of_ceiling_hi", "rigorous_converged", "min_test_pairs", "min_reliability")


def glue_numbers(res: Result, cfg: Config) -> dict[str, object]:
    """Glue (myst-nb) the numbers the prose quotes, for the first model and concept set run
    (the page's headline), and the convergence over every fit; returns them too."""
    from IPython.display import Markdown

    table = table_summary(res)
    values: dict[str, object] = {"c_lo": min(cfg.C_sweep), "c_hi": max(cfg.C_sweep),
                                 "n_seeds": len(cfg.seeds), "test_share": cfg.test_fraction}
    # Every key the page quotes exists, NaN for a mode that was not run.
    values.update(dict.fromkeys(GLUED_NUMBERS, float("nan")))
    values.update(model=Markdown("no model"), set=Markdown("no"),
                  converged_note=Markdown("rigorous mode was not run"),
                  every_run=Markdown("rigorous mode was not run"))
    if not res.paper and not res.rigorous_rows:
        return glue_values(values)
    model, source = next(iter(res.paper or res.rigorous_M))
    values["model"], values["set"] = Markdown(f"`{model}`"), Markdown(source)
    here = table[(table["model"] == model) & (table["set"] == source)
                 & (table["mode"] == "rigorous")]

    def pick(kind: str, C: float | None = None, column: str = "diag") -> float:
        rows = here[(here["kind"] == kind) & ((here["C"] == C) if C is not None
                                              else here["C"].isna())]
        return float(rows[column].iloc[0]) if len(rows) else float("nan")

    if (model, source) in res.paper:
        values["paper_diag"] = res.paper[model, source]["diag"]
        values["paper_off"] = res.paper[model, source]["offdiag_abs"]
        values["paper_converged"] = float(table.loc[table["mode"] == "paper", "converged"].min())
    if (model, source) in res.rigorous_M:
        lo, hi = values["c_lo"], values["c_hi"]
        values["ceiling"] = pick("ceiling (split-half)")
        values["same_lo"] = pick("probe, same pairs", lo)
        values["held_lo"], values["held_hi"] = pick("probe", lo), pick("probe", hi)
        values["held_hi_sd"] = pick("probe", hi, "diag sd")
        values["off_hi"] = pick("probe", hi, "offdiag_abs")
        values["null_hi"] = pick("permuted-label null", hi)
        values["random"] = pick("random W")
        values["acc_hi"] = pick("probe", hi, "heldout_accuracy")
        values["share_of_ceiling_hi"] = values["held_hi"] / values["ceiling"]
        rig = table[(table["mode"] == "rigorous") & (table["kind"] == "probe")]
        values["rigorous_converged"] = float(rig["converged"].min())
        c = res.rigorous_concepts[model, source]
        values["min_test_pairs"], values["min_reliability"] = c["n_test_K"].min(), \
            c["reliability_K"].min()
        values["every_run"] = Markdown("; ".join(
            f"`{m}` on the {s} pairs, {_diag(table, m, s, hi):.3f} against a ceiling of "
            f"{_diag(table, m, s, None, 'ceiling (split-half)'):.3f}"
            for m, s in res.rigorous_M))
        values["converged_note"] = Markdown(
            "every rigorous-mode probe converged, at every C" if values["rigorous_converged"] == 1
            else f"only {values['rigorous_converged']:.0%} of the rigorous-mode probes converged "
                 "at the worst C: raise `rigorous_max_iter`")
    return glue_values(values)
