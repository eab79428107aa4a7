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
from ipta.exercises import Check, checker
from ipta.figures import save_figure  # noqa: F401 (notebook: chapter.save_figure)
from ipta.notebook import setup_for
from ipta.prose import GLUED as glued  # noqa: F401 (notebook: v = chapter.glued)
from ipta.prose import glue_values
from ipta.tables import folded, mean_sd  # noqa: F401 (notebook: chapter.folded)
from ipta.lm.concepts import ConceptSet, load_concept_set, paper_directory_named
from ipta.lm.models import LazyModel
from ipta.probing.alignment import (ESTIMATOR, NOISE_CEILING, PairReps, paper_mode,
                                    rigorous_mode)
from ipta.probing.config import Config
from ipta.probing.control import CONTROLS, theory_pairs
from ipta.probing.figures import (figure_c_sweep, figure_cos_heatmaps,  # noqa: F401
                                  figure_paper_heatmaps, figure_rigorous_heatmaps)


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


def _cached_rigorous(reps: PairReps, cfg: Config, cov_DD: np.ndarray | None = None):
    """rigorous_mode through the cache (rows in meta, seed-mean matrices as arrays)."""
    args = {"reps": reps, "Cs": cfg.C_sweep, "seeds": cfg.seeds,
            "test_fraction": cfg.test_fraction, "max_iter": cfg.rigorous_max_iter,
            "cov_DD": cov_DD}

    def compute():
        rows, means = rigorous_mode(**args)
        return means, {"rows": rows}

    arrays, meta = get_or_compute("probing_rigorous", call_spec(rigorous_mode, args), compute,
                                  code=("ipta.probing.alignment",))
    rows = [{k: (np.nan if v is None else v) for k, v in r.items()} for r in meta["rows"]]
    concepts = {k: arrays[k] for k in ("estimator_K", "noise_ceiling_K", "n_train_K",
                                       "n_test_K")}
    return rows, {C: arrays[f"M_{i}"] for i, C in enumerate(cfg.C_sweep)}, concepts


def _add_rigorous(res: Result, cfg: Config, model: str, source: str, reps: PairReps,
                  cov_DD: np.ndarray | None) -> None:
    rows, mean_M, concepts = _cached_rigorous(reps, cfg, cov_DD)
    res.rigorous_rows += [{"model": model, "set": source, "D": reps.base[0].shape[1], **r}
                          for r in rows]
    res.rigorous_M[model, source] = mean_M
    res.rigorous_concepts[model, source] = concepts


def run(cfg: Config, progress: bool = True) -> Result:
    """All models x available concept sets x modes of ``cfg``, then the positive controls;
    each model is loaded at most once."""
    from ipta.lm.activations import cached_unembedding_covariance

    res = Result()
    sets, res.notes = available_sets(cfg)
    for source, concept_set in sets.items():
        res.names[source] = concept_set.names
        res.reports[source] = concept_set.report()
    for model in cfg.models:
        loader = LazyModel(model, revision=cfg.revision, device=cfg.device, dtype=cfg.dtype,
                           device_map=cfg.device_map)
        cov_DD = cached_unembedding_covariance(model, revision=cfg.revision, dtype=cfg.dtype,
                                               device=cfg.device, loaded=loader)
        for source, concept_set in sets.items():
            reps = pair_representations(concept_set, model, cfg, loaded=loader,
                                        progress=progress)
            if "paper" in cfg.modes:
                res.paper[model, source] = _cached_paper(reps, cfg)
            if "rigorous" in cfg.modes:
                _add_rigorous(res, cfg, model, source, reps, cov_DD)
        if cfg.throughput and sets:
            first = next(iter(sets.values()))
            words = list(dict.fromkeys(w for n in first.names for p in first.pairs[n] for w in p))
            res.throughput[model] = measure_throughput(loader(), words, cfg)
        del loader  # free the model before the next one loads
    if cfg.positive_control and "rigorous" in cfg.modes:
        for channel, name in CONTROLS.items():
            reps, cov_DD = theory_pairs(channel)
            res.names["planted"] = reps.names
            _add_rigorous(res, cfg, name, "planted", reps, cov_DD)
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
        # How many training pairs a probe of D weights had: the regime every C is read in.
        agg["train pairs"] = grouped["train_pairs"].mean() if "train_pairs" in rig else np.nan
        agg["D"] = grouped["D"].first()
        table = pd.concat([table, agg.reset_index()], ignore_index=True)
    metrics = [c for c in table.columns if c not in ("model", "set", "mode", "kind", "C")]
    return table.round({c: 3 for c in metrics})


def table_reliability(res: Result) -> "pandas.DataFrame":
    """Per concept and (model, set): the mean-difference estimator's score cos(a_train, a_test)
    and the held-out directions' noise ceiling, means over seeds (the pairs each side had are
    in :func:`table_counts`)."""
    import pandas as pd

    frames = {}
    for (model, source), c in res.rigorous_concepts.items():
        if source == "planted":
            continue
        frames[model, source] = pd.DataFrame(
            {"estimator": c["estimator_K"].round(3), "noise ceiling": c["noise_ceiling_K"].round(3)},
            index=list(res.names[source]))
    return pd.concat(frames, axis=1).rename_axis("concept")


def _reading(table) -> list[str]:
    """The mode and the matrix kind of each row as one label ("paper: probe", "null")."""
    kind = table["kind"].fillna("")
    return [f"paper: {k}" if m == "paper" else k for m, k in zip(table["mode"], kind)]


def table_rows(table) -> "pandas.DataFrame":
    """Every row of :func:`table_summary` as the page shows it (folded): model, set, reading, C
    and the main metrics as mean ± sd over seeds."""
    import pandas as pd

    def column(name):
        sd = table[f"{name} sd"] if f"{name} sd" in table else [np.nan] * len(table)
        return mean_sd(table[name], sd) if name in table else [""] * len(table)

    return pd.DataFrame({"model": table["model"], "set": table["set"],
                         "reading": _reading(table), "C": table["C"],
                         "diagonal": column("diag"), "|off-diagonal|": column("offdiag_abs"),
                         "held-out accuracy": column("heldout_accuracy"),
                         "diagonal is row max": column("diag_is_row_max")})


def table_closing(table, res: Result, cfg: Config):
    """Paper mode; the rigorous mode's estimator, noise ceiling, probes at the smallest and
    largest C (Euclidean and causal) and the null at the largest; plus throughput."""
    c_lo, c_hi = min(cfg.C_sweep), max(cfg.C_sweep)
    kind = table["kind"].fillna("")
    keep = ((table["mode"] == "paper") | kind.isin([ESTIMATOR, NOISE_CEILING])
            | ((kind == "probe") & table["C"].isin([c_lo, c_hi]))
            | (kind.isin(["probe, causal", "permuted-label null"]) & (table["C"] == c_hi)))
    shown = table.loc[keep]
    out = shown[["model", "set"]].copy()
    out["reading"] = _reading(shown)
    for name, col in (("C", "C"), ("diagonal", "diag"), ("|off-diagonal|", "offdiag_abs"),
                      ("held-out accuracy", "heldout_accuracy"), ("train pairs", "train pairs")):
        out[name] = shown[col] if col in shown else np.nan
    out["words/s"] = out["model"].map(res.throughput).round(0)
    return out.reset_index(drop=True)


def _diag(table, model: str, source: str, C: float | None, kind: str = "probe",
          column: str = "diag") -> float:
    """The rigorous mode's mean of one matrix kind (at C, or with no C)."""
    rows = table[(table["model"] == model) & (table["set"] == source)
                 & (table["mode"] == "rigorous") & (table["kind"] == kind)
                 & ((table["C"] == C) if C is not None else table["C"].isna())]
    return float(rows[column].iloc[0]) if len(rows) else float("nan")


def finding(v: dict[str, object]) -> str:
    """The findings page's verdict on Figure 3, in a few words, from the headline model's
    numbers: the paper's protocol, the held-out diagonal at the largest C against the null,
    and against the positive control at the same C."""
    if not np.isfinite(v["held_hi"]):
        return "not computed (rigorous mode was not run)"
    if v["held_hi"] <= v["null_hi"] + 0.1:
        return ("near 1 in the paper's protocol, by construction; held out, no better than "
                "the null")
    if np.isfinite(v["control_held_hi"]) and v["held_hi"] < v["control_held_hi"] - 0.1:
        return ("partly: held out, directions and probes align above the null, but less "
                "than where the corollary holds by construction")
    return ("holds held out: directions and probes align above the null, as strongly as "
            "where the corollary holds by construction")


GLUED_NUMBERS = ("paper_diag", "paper_off", "paper_converged", "estimator", "noise_ceiling",
                 "same_lo", "held_lo", "held_hi", "held_hi_sd", "off_hi", "null_hi", "random",
                 "acc_hi", "causal_hi", "causal_off_hi", "rigorous_converged",
                 "min_test_pairs", "min_noise_ceiling", "train_pairs", "D",
                 "control_estimator", "control_ceiling", "control_held_lo", "control_held_hi",
                 "control_off_hi", "control_null_off_hi", "control_causal_hi",
                 "named_held_hi", "named_off_hi")
"""Every number the page quotes (NaN where a mode was not run)."""


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
                  every_run=Markdown("rigorous mode was not run"),
                  finding_figure3="not computed (rigorous mode was not run)")
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
        values["estimator"] = pick(ESTIMATOR)
        values["noise_ceiling"] = pick(NOISE_CEILING)
        values["same_lo"] = pick("probe, same pairs", lo)
        values["held_lo"], values["held_hi"] = pick("probe", lo), pick("probe", hi)
        values["held_hi_sd"] = pick("probe", hi, "diag sd")
        values["off_hi"] = pick("probe", hi, "offdiag_abs")
        values["null_hi"] = pick("permuted-label null", hi)
        values["random"] = pick("random W")
        values["acc_hi"] = pick("probe", hi, "heldout_accuracy")
        values["causal_hi"] = pick("probe, causal", hi)
        values["causal_off_hi"] = pick("probe, causal", hi, "offdiag_abs")
        values["train_pairs"] = pick("probe", hi, "train pairs")
        values["D"] = pick("probe", hi, "D")
        rig = table[(table["mode"] == "rigorous") & (table["kind"] == "probe")]
        values["rigorous_converged"] = float(rig["converged"].min())
        c = res.rigorous_concepts[model, source]
        values["min_test_pairs"] = c["n_test_K"].min()
        values["min_noise_ceiling"] = np.nanmin(c["noise_ceiling_K"])
        values["every_run"] = Markdown("; ".join(
            f"`{m}` on the {s} pairs, {_diag(table, m, s, hi):.3f} (causal "
            f"{_diag(table, m, s, hi, 'probe, causal'):.3f}) against a noise ceiling of "
            f"{_diag(table, m, s, None, NOISE_CEILING):.3f}"
            for m, s in res.rigorous_M if s != "planted"))
        control, named = CONTROLS["additive"], CONTROLS["named"]
        if (control, "planted") in res.rigorous_M:
            values.update(
                control_estimator=_diag(table, control, "planted", None, ESTIMATOR),
                control_ceiling=_diag(table, control, "planted", None, NOISE_CEILING),
                control_held_lo=_diag(table, control, "planted", lo),
                control_held_hi=_diag(table, control, "planted", hi),
                control_off_hi=_diag(table, control, "planted", hi, column="offdiag_abs"),
                control_null_off_hi=_diag(table, control, "planted", hi,
                                          "permuted-label null", "offdiag_abs"),
                control_causal_hi=_diag(table, control, "planted", hi, "probe, causal"),
                named_held_hi=_diag(table, named, "planted", hi),
                named_off_hi=_diag(table, named, "planted", hi, column="offdiag_abs"))
        values["finding_figure3"] = finding(values)
        values["converged_note"] = Markdown(
            "every rigorous-mode probe converged, at every C" if values["rigorous_converged"] == 1
            else f"only {values['rigorous_converged']:.0%} of the rigorous-mode probes converged "
                 "at the worst C: raise `rigorous_max_iter`")
    return glue_values(values)


# ----------------------------------------------------------------------- exercises
def exercise_row_max(res: Result) -> dict[tuple[str, str], float]:
    """Exercise probe-ex-paper: per (model, concept set) in paper mode, the share of rows of M
    whose largest entry is on the diagonal."""
    return {key: float((r["M"].argmax(axis=1) == np.arange(len(r["M"]))).mean())
            for key, r in res.paper.items()}


EXERCISES = {"probe-ex-paper": Check("a dict {(model, concept set): share of rows of M whose "
                                     "largest entry is on the diagonal}", exercise_row_max)}
check_exercise = checker(EXERCISES)
