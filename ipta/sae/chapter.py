"""The SAE chapter (notebook ``04_sae``): four variants, the concept metric, matched L0 and the
alpha ablation (paper section 5, appendix H; Table 2, Figures 4b, 6 and 7).

Like every chapter module: :class:`Config`, :func:`setup`, :func:`run` returning a
:class:`Result`, then tables (``table_*``, most from :mod:`ipta.sae.tables`) and figures
(``figure_*``, from :mod:`ipta.sae.figures`). Training and evaluation live in
:mod:`ipta.sae.runs`, the autoencoder in :mod:`ipta.sae.model`, the metrics in
:mod:`ipta.sae.metrics`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ipta.exercises import Check, checker
from ipta.figures import save_figure  # noqa: F401 (notebook: chapter.save_figure)
from ipta.notebook import setup_for
from ipta.prose import GLUED as glued  # noqa: F401 (notebook: v = chapter.glued)
from ipta.prose import glue_values
from ipta.sae import metrics
from ipta.sae.config import READINGS, VARIANTS, Config
from ipta.sae.controls import CONTROL_LABELS, controls
from ipta.sae.export import record_runs, run_name
from ipta.sae.figures import (figure_chance, figure_curves, figure_final_mse,  # noqa: F401
                              figure_long, figure_planted, figure_verdicts)
from ipta.sae.labels import READING_LABELS, VARIANT_LABELS, by_label, uses
from ipta.sae.long import load_long  # noqa: F401 (notebook: chapter.load_long)
from ipta.sae.paper import PAPER_COVERAGE, PAPER_MEAN, PAPER_TABLE2
from ipta.sae.planted import benchmark
from ipta.sae.planted import ranking as planted_ranking
from ipta.sae.planted import scores as planted_scores
from ipta.sae.runs import ConceptData, Run, chapter_inputs, train_all
from ipta.sae.tables import (table_2, table_2_controls, table_chance,  # noqa: F401
                             table_long_settings, table_planted, table_summary, table_verdicts)
from ipta.sae.verdicts import READINGS as READINGS_KEYS
from ipta.sae.verdicts import summary as verdicts_summary
from ipta.sae.verdicts import verdicts
from ipta import stats
from ipta.stats import Difference

setup = setup_for(Config)
"""``setup(profile, params)``: the chapter's validated settings, shown as the page's first output."""


@dataclasses.dataclass(frozen=True)
class Result:
    """Every run of the chapter and the concept data they were judged on."""

    main: list[Run]
    """Each variant at its own sparsity, every seed."""
    matched: list[Run]
    """Top-k and batch-top-k retrained with k = the structured SAE's held-out L0."""
    ablation: list[Run]
    """The structured SAE at each alpha of ``cfg.alphas`` (alpha = 0 is p-annealing)."""
    concepts: ConceptData
    threshold: float
    """The PCC above which a concept counts as covered (``cfg.pcc_threshold``)."""
    controls: list[Run] = dataclasses.field(default_factory=list)
    """Chance levels and the ceiling (:mod:`ipta.sae.controls`), every seed."""
    verdicts: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Every variant against every control in every reading (:mod:`ipta.sae.verdicts`)."""
    planted: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The metric on a planted ground truth (:func:`ipta.sae.planted.benchmark`)."""


def run(cfg: Config, progress: bool = True) -> Result:
    """Every run of the chapter (:func:`ipta.sae.runs.train_all`) and its controls.
    Each run is cached on its own (see :mod:`ipta.sae.runs`); the model is loaded at most once."""
    store, concepts = chapter_inputs(cfg, progress)
    main_runs, matched, ablation = train_all(cfg, store, concepts, progress)
    res = Result(main_runs, matched, ablation, concepts, cfg.pcc_threshold,
                 controls(cfg, store, concepts), verdicts(cfg, store, concepts, main_runs),
                 benchmark(cfg, progress))
    record_runs(run_index_rows(res, cfg))
    return res


def describe(res: Result) -> str:
    """How many concepts and words the metric judged, and where the pairs came from."""
    c = res.concepts
    return f"{len(c.names)} concepts, {len(c.reps_ND)} words, pairs from: {c.source}"


def run_index_rows(res: Result, cfg: Config) -> list[dict[str, Any]]:
    """Each trained run by name (set, variant, seed, alpha, k, model, layer) -> its folder."""
    rows, seen = [], set()
    for group, runs in (("main", res.main), ("matched L0", res.matched), ("alpha ablation",
                                                                          res.ablation)):
        for r in runs:
            if r.directory is None or r.directory in seen:
                continue
            seen.add(r.directory)
            rows.append({"runs": group, "variant": r.variant, "seed": r.seed,
                         "alpha": r.alpha if uses(r, "alpha") else None,
                         "k": r.k, "model": cfg.model, "layer": cfg.layer,
                         "context_size": cfg.context_length, "folder": str(r.directory)})
    return rows


def table_runs(res: Result, cfg: Config) -> "pandas.DataFrame":
    """The trained runs by name, their cache folders and the command that exports each one."""
    import pandas as pd

    frame = pd.DataFrame(run_index_rows(res, cfg))
    frame["folder"] = [Path(f).name[:16] + "…" for f in frame["folder"]]
    frame["export"] = [f"ipta export-sae {run_name(r._asdict())} OUT" for r in frame.itertuples()]
    return frame.drop(columns=["model", "layer"])


def reading_paper_rows() -> str:
    """How many rows the paper's coverage@0.5 values imply, and the counts of concepts above 0.5
    without and with the table's average row counted as one more concept."""
    labels, n = [VARIANT_LABELS[v] for v in VARIANTS], len(PAPER_TABLE2)
    implied = metrics.coverage_implied_rows(dict(zip(labels, PAPER_COVERAGE)))
    lines = [f"row counts consistent with the paper's coverages (n <= 40): {list(implied)}"]
    for j, name in enumerate(labels):
        column = [row[j] for row in PAPER_TABLE2.values()]
        lines.append(f"{name:12s} concepts > 0.5: {metrics.count_above(column)}/{n}, "
                     f"with the average row: "
                     f"{metrics.count_above(column + [PAPER_MEAN[j]])}/{n + 1}")
    return "\n".join(lines)


def reading_runs(res: Result) -> str:
    """One line per main and matched run, and the paper's two numbers per variant."""
    lines = []
    for r in res.main + res.matched:
        f = r.final
        lines.append(f"{VARIANT_LABELS[r.variant]:12s} k={r.k:<4d} seed={r.seed}  "
                     f"mean PCC {f['mean_pcc']:.3f}  coverage {f['coverage']:.1%}  "
                     f"val MSE {f['val_mse']:.4g}  FVU {f['val_fvu']:.3f}  "
                     f"L0 {f['val_l0']:.1f}  dead {f['val_dead']:.1%}")
    lines.append(f"paper (mean PCC / coverage): "
                 f"{dict(zip([VARIANT_LABELS[v] for v in VARIANTS], zip(PAPER_MEAN, PAPER_COVERAGE)))}")
    return "\n".join(lines)


# ----------------------------------------------------------------------- tables and figures
def paired_gain(res: Result, variant: str, key: str = "mean_pcc", against: str = "untrained"
                ) -> Difference:
    """Trained ``variant`` minus a control (its own ``untrained`` version, or random features:
    ``random`` / ``random_topk``) on ``key``, paired by seed (seeds only: the exercises' first
    look; the page's verdicts come from :func:`table_verdicts`)."""
    trained = {r.seed: r.final[key] for r in res.main if r.variant == variant}
    base = {r.seed: r.final[key] for r in res.controls if r.kind == against
            and (r.variant == variant or against != "untrained")}
    return Difference.paired(trained, base)


def _listed(items: list[str]) -> str:
    return "; ".join(items) if items else "none"


def glue_verdicts(verdicts: dict[str, Any], prefix: str = "") -> dict[str, object]:
    """The verdict table's numbers for prose: the pairs that beat in every, some and no
    reading, the nulls' false-positive share and what the table can detect."""
    from IPython.display import Markdown

    summary = verdicts_summary(verdicts)
    power = verdicts["power"]
    values: dict[str, object] = {
        "n_verdicts": len(verdicts["rows"]), "n_beats": sum(r["beats"] for r in verdicts["rows"]),
        "n_nulls": len(verdicts["nulls"]), "null_share": verdicts["null_share"],
        "null_low": verdicts["null_low"], "null_high": verdicts["null_high"],
        "n_boot": verdicts["n_boot"], "detectable": power["detectable"],
        "median_sd": power["median_sd"], "seed_share": power.get("seed_share", np.nan),
        **{f"detectable_{n}": d for n, d in power.get("by_seeds", {}).items()},
        "null_verdict": Markdown(
            "at or below its nominal 5%" if verdicts["null_share"] <= stats.LEVEL else
            "above its nominal 5%, though its interval reaches 5%"
            if verdicts["null_low"] <= stats.LEVEL else
            "above its nominal 5%: read the verdicts with that in mind"),
        "error_source": Markdown(
            "Most of that error comes from the concepts and the words, not from the seeds"
            if power.get("seed_share", 1.0) < 0.5 else
            "Most of that error comes from the seeds, not from the concepts and the words"),
        "beats_every": Markdown(_listed(summary["every"])),
        "beats_some": Markdown(_listed(summary["some"])),
        "beats_none": Markdown(_listed(summary["none"]))}
    return {f"{prefix}{k}": v for k, v in values.items()}


def glue_numbers(res: Result, cfg: Config) -> dict[str, object]:
    """Glue (myst-nb) the numbers and verdicts the chapter's prose quotes; returns them too."""
    from IPython.display import Markdown

    values: dict[str, object] = {"n_seeds": len({r.seed for r in res.main}),
                                 "n_concepts": len(res.concepts.names)}
    pcc = by_label(res.main + res.controls, "mean_pcc")
    spear = by_label(res.main + res.controls, "mean_pcc_spearman")
    held = by_label(res.main + res.controls, "mean_pcc_heldout")
    for v in VARIANTS:  # every key exists, NaN for a variant that was not run
        lab = VARIANT_LABELS[v]
        nan = np.array([np.nan])
        values[f"{v}_pcc"] = pcc.get(lab, nan).mean()
        values[f"{v}_spearman"] = spear.get(lab, nan).mean()
        values[f"{v}_untrained_pcc"] = pcc.get(f"untrained {lab}", nan).mean()
        values[f"{v}_untrained_spearman"] = spear.get(f"untrained {lab}", nan).mean()
        values[f"{v}_heldout"] = held.get(lab, nan).mean()
    for kind in ("random", "random_topk", "model_dims", "ceiling"):
        values[f"{kind}_pcc"] = pcc[CONTROL_LABELS[kind]].mean()
        values[f"{kind}_spearman"] = spear[CONTROL_LABELS[kind]].mean()
        values[f"{kind}_heldout"] = held[CONTROL_LABELS[kind]].mean()
    values["density"] = Markdown(
        "rewards dense codes by itself" if values["random_pcc"] > values["random_topk_pcc"]
        else "does not reward dense codes by itself")
    for reading in READINGS:  # the alpha ablation's runs with alpha > 0, every seed
        runs = [r for r in res.ablation if r.variant == reading]
        values[f"ablation_{reading}_pcc"] = float(np.mean([r.final["mean_pcc"] for r in runs])
                                                  if runs else np.nan)
        values[f"ablation_{reading}_l0"] = float(np.mean([r.final["val_l0"] for r in runs])
                                                 if runs else np.nan)
    if any(r.variant == "batchtopk" for r in res.main):
        values["batchtopk_l0"] = by_label(res.main, "val_l0")["batch-top-k"].mean()
        values["k"] = next(r.k for r in res.main if r.variant == "batchtopk")
    best = max({r.variant for r in res.main}, key=lambda v: values[f"{v}_pcc"])
    values["best"], values["best_pcc"] = Markdown(VARIANT_LABELS[best]), values[f"{best}_pcc"]
    order = sorted({r.variant for r in res.main}, key=lambda v: -values[f"{v}_pcc"])
    values["order"] = Markdown(" > ".join(VARIANT_LABELS[v] for v in order))
    order_s = sorted({r.variant for r in res.main}, key=lambda v: -values[f"{v}_spearman"])
    values["order_spearman"] = Markdown(" > ".join(VARIANT_LABELS[v] for v in order_s))
    values.update(glue_verdicts(res.verdicts))
    values.update(glue_planted(res.planted))
    values["paper_structured_pcc"], values["paper_panneal_pcc"] = PAPER_MEAN[3], PAPER_MEAN[2]
    values.update(findings(res, values))
    return glue_values(values)


def findings(res: Result, v: dict[str, object]) -> dict[str, str]:
    """The findings page's verdicts on the concept metric, Table 2, the structured SAE and the
    alpha ablation, in a few words, from this page's verdicts and planted benchmark."""
    rows = res.verdicts.get("rows", [])

    def holds(variant: str, against: str) -> list[bool]:
        return [r["beats"] for r in rows if (r["variant"], r["against"]) == (variant, against)]

    every_untrained = [v for v in VARIANTS if holds(v, "untrained") and all(holds(v, "untrained"))]
    every_matched = [v for v in VARIANTS
                     if holds(v, "random_matched") and all(holds(v, "random_matched"))]
    head = holds("structured", "trained_panneal")
    moves = v["planted_paper_small"] - v["planted_paper_large"]
    out = {"finding_metric": (
        "partly: its paper's reading moves with the scale of the codes; the scale-free "
        "readings rank a planted dictionary above untrained ones" if moves > 0.05
        else "holds on the planted benchmark")}
    if every_matched:
        names = ", ".join(VARIANT_LABELS[x] for x in every_matched)
        out["finding_table2"] = (f"holds for {names}: above random features matched to its "
                                 "own codes in every reading")
    elif every_untrained:
        names = ", ".join(VARIANT_LABELS[x] for x in every_untrained)
        out["finding_table2"] = (f"partly: {names} beats its untrained copy in every reading, "
                                 "but no variant beats random features matched to its codes "
                                 "in all of them")
    else:
        out["finding_table2"] = ("not supported at this scale: no variant beats its untrained "
                                 "copy in every reading")
    out["finding_structured"] = (
        "not tested (no structured and p-annealing runs)" if not head
        else "holds in every reading" if all(head)
        else f"holds in {sum(head)} of {len(head)} readings" if any(head)
        else "not supported at this scale: no reading shows it")
    gap = abs(v["ablation_structured_pcc"] - v["panneal_pcc"])
    detectable = res.verdicts.get("power", {}).get("detectable", np.nan)
    out["finding_figures67"] = (
        "reproduced in shape; the alpha ablation's difference from p-annealing is smaller "
        "than what this run can detect" if gap < detectable
        else "reproduced in shape; the alpha ablation moves the metric")
    return out


def glue_planted(planted: dict[str, Any]) -> dict[str, object]:
    """The planted benchmark's numbers for prose."""
    from IPython.display import Markdown

    scores = planted_scores(planted)
    perfect = scores["true codes (a perfect SAE)"]
    ranking = planted_ranking(planted)
    scale = planted["scale"]
    settings = planted["settings"]
    values: dict[str, object] = {
        f"planted_perfect_{r}": perfect[k] for r, k in READINGS_KEYS.items()}
    values.update(planted_n_atoms=settings["n_atoms"], planted_d_model=settings["d_model"],
                  planted_active=settings["active"], planted_pairs=settings["pairs_per_concept"],
                  planted_n_concepts=settings["n_concepts"])
    values["planted_paper_small"] = scale[min(scale, key=float)]["mean_pcc"]
    values["planted_paper_large"] = scale[max(scale, key=float)]["mean_pcc"]
    values["planted_scale_small"] = float(min(scale, key=float))
    values["planted_scale_large"] = float(max(scale, key=float))
    density = planted["density"]
    values["planted_spearman_sparse"] = density[min(density, key=float)]["mean_pcc_spearman"]
    values["planted_spearman_dense"] = density[max(density, key=float)]["mean_pcc_spearman"]

    def readings(test: str) -> Markdown:
        held = [READING_LABELS[r] for r, v in ranking.items() if v[test]]
        return Markdown(", ".join(held) if held else "no reading")

    values["planted_perfect_first"] = readings("perfect_first")
    values["planted_trained_beat"] = readings("trained_beat_untrained")
    values["planted_untrained_random"] = readings("untrained_near_random")
    values.update(glue_verdicts(planted["verdicts"], prefix="planted_"))
    return values


def glue_long_numbers(summary: dict[str, Any] | None) -> dict[str, object]:
    """Glue the long setting's numbers: per variant the margin over its untrained copy at the
    first and the last evaluation in every reading and over random features at top-k sparsity
    at the last, its L0 (final, first, lowest and highest after the first evaluation) and code
    size; per reading, which variants' margins fell from their best (NaN and a note when no
    summary exists)."""
    from IPython.display import Markdown

    values: dict[str, object] = {}
    runs = (summary or {}).get("variants", {})
    for v in VARIANTS:
        run = runs.get(v)
        for reading, key in READINGS_KEYS.items():
            margin = [x - run["untrained"][key] for x in run[key]] if run else [np.nan]
            values[f"long_{v}_{reading}_first"] = margin[0]
            values[f"long_{v}_{reading}_last"] = margin[-1]
            values[f"long_{v}_{reading}_drop"] = max(margin) - margin[-1]
            over_random = ([x - run["random_topk"][key] for x in run[key]] if run
                           else [np.nan])
            values[f"long_{v}_{reading}_vs_random_last"] = over_random[-1]
        values[f"long_{v}_l0"] = run["val_l0"][-1] if run else np.nan
        values[f"long_{v}_l0_first"] = run["val_l0"][0] if run else np.nan
        later = run["val_l0"][1:] if run and len(run["val_l0"]) > 1 else [np.nan]
        values[f"long_{v}_l0_low"], values[f"long_{v}_l0_high"] = min(later), max(later)
        values[f"long_{v}_pairs_l0"] = run["pairs_l0"][-1] if run else np.nan
        values[f"long_{v}_val_fvu_first"] = run["val_fvu"][0] if run else np.nan
        values[f"long_{v}_val_fvu_last"] = run["val_fvu"][-1] if run else np.nan
        values[f"long_{v}_scale_first"] = run["pairs_code_p99"][0] if run else np.nan
        values[f"long_{v}_scale_last"] = run["pairs_code_p99"][-1] if run else np.nan
        values[f"long_{v}_fvu_first"] = run["pairs_fvu"][0] if run else np.nan
        values[f"long_{v}_fvu_last"] = run["pairs_fvu"][-1] if run else np.nan
    for reading in READINGS_KEYS:
        fell = [VARIANT_LABELS[v] for v in runs if values[f"long_{v}_{reading}_drop"] > 0.01]
        values[f"long_{reading}_declines"] = Markdown(", ".join(fell) if fell else "none")
    if runs:
        values["long_tokens"] = max(max(r["tokens"]) for r in runs.values())
        order = sorted(runs, key=lambda v: -values[f"long_{v}_paper_last"])
        values["long_order"] = Markdown(" > ".join(VARIANT_LABELS[v] for v in order))
    else:
        values["long_tokens"] = float("nan")
        values["long_order"] = Markdown("(not computed: run `ipta sae-long`)")
    return glue_values(values)


# ----------------------------------------------------------------------- exercises
def exercise_seed_p(res: Result) -> dict[str, float]:
    """Exercise sae-ex-gain: per trained variant, the seeds-alone sign-flip p-value of its
    held-out gain over its untrained copy."""
    return {v: paired_gain(res, v, "mean_pcc_heldout").p_above
            for v in sorted({r.variant for r in res.main})}


EXERCISES = {"sae-ex-gain": Check("a dict {variant: the seeds-alone p-value p_above of its "
                                  "held-out gain over its untrained copy}", exercise_seed_p)}
check_exercise = checker(EXERCISES)
