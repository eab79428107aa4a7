"""The SAE chapter (notebook ``04_sae``): four variants, the concept metric, matched L0 and the
alpha ablation (paper section 5, appendix H; Table 2, Figures 4b, 6 and 7).

Like every chapter module: :class:`Config`, :func:`setup`, :func:`run` returning a
:class:`Result`, then tables (``table_*``) and figures (``figure_*``). Training and evaluation
live in :mod:`ipta.sae.runs`, the autoencoder in :mod:`ipta.sae.model`, the metrics in
:mod:`ipta.sae.metrics`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ipta.figures import glue_figure  # noqa: F401 (notebook: chapter.glue_figure)
from ipta.notebook import glue_values, setup_for
from ipta.sae import metrics
from ipta.sae.config import READINGS, VARIANTS, Config
from ipta.sae.controls import CONTROL_LABELS, CONTROLS, controls
from ipta.sae.export import record_runs, run_name
from ipta.sae.figures import (figure_chance, figure_curves, figure_final_mse,  # noqa: F401
                              figure_long)
from ipta.sae.labels import VARIANT_LABELS, by_label, label, uses
from ipta.sae.long import load_long  # noqa: F401 (notebook: chapter.load_long)
from ipta.sae.paper import PAPER_COVERAGE, PAPER_MEAN, PAPER_TABLE2, paper_name
from ipta.sae.runs import ConceptData, Run, chapter_inputs, train_all
from ipta.stats import BEATS, Difference

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


def run(cfg: Config, progress: bool = True) -> Result:
    """Every run of the chapter (:func:`ipta.sae.runs.train_all`) and its controls.
    Each run is cached on its own (see :mod:`ipta.sae.runs`); the model is loaded at most once."""
    store, concepts = chapter_inputs(cfg, progress)
    main_runs, matched, ablation = train_all(cfg, store, concepts, progress)
    res = Result(main_runs, matched, ablation, concepts, cfg.pcc_threshold,
                 controls(cfg, store, concepts))
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
                         "folder": str(r.directory)})
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
SUMMARY_METRICS = ("mean_pcc", "coverage", "mean_pcc_raw", "mean_pcc_spearman",
                   "mean_pcc_exp_std", "mean_pcc_heldout", "val_mse", "val_fvu", "val_l0", "val_dead", "pairs_mse",
                   "pairs_l0")


def table_summary(runs: list[Run]):
    """One row per run: variant, seed, k/alpha, and the final metrics (Table 2's right side)."""
    import pandas as pd

    rows = [{"variant": label(r), "seed": r.seed,
             "k": r.k if uses(r, "k") else None,
             "alpha": r.alpha if r.kind == "trained" and uses(r, "alpha") else None,
             **{m: r.final.get(m, np.nan) for m in SUMMARY_METRICS}}
            for r in runs]
    return pd.DataFrame(rows)


def _mean_sd(values: np.ndarray) -> str:
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.3f} ± {sd:.3f}"


def table_chance(res: Result):
    """Each trained variant beside the controls that learned nothing: the concept metric in every
    reading, and the inference L0, as mean ± standard deviation over seeds."""
    import pandas as pd

    runs = res.main + res.controls
    columns = {"mean PCC (paper)": "mean_pcc", f"coverage@{res.threshold:g}": "coverage",
               "Pearson, raw codes": "mean_pcc_raw", "Spearman": "mean_pcc_spearman",
               "Pearson, exp(standardised)": "mean_pcc_exp_std",
               "held out (paper's, other words)": "mean_pcc_heldout"}
    table = pd.DataFrame({title: {k: _mean_sd(v) for k, v in by_label(runs, key).items()}
                          for title, key in columns.items()})
    # An SAE's L0 on held-out tokens; a control without an encoder, its L0 on the pair words.
    l0 = {lab: np.mean([r.final.get("val_l0", r.final.get("pairs_l0")) for r in runs
                        if label(r) == lab]) for lab in table.index}
    table["L0 at inference"] = [f"{l0[k]:.1f}" for k in table.index]
    table["seeds"] = [len(v) for v in by_label(runs, "mean_pcc").values()]
    return table


def paired_gain(res: Result, variant: str, key: str = "mean_pcc", against: str = "untrained"
                ) -> Difference:
    """Trained ``variant`` minus a control (its own ``untrained`` version, or random features:
    ``random`` / ``random_topk``) on ``key``, paired by seed."""
    trained = {r.seed: r.final[key] for r in res.main if r.variant == variant}
    base = {r.seed: r.final[key] for r in res.controls if r.kind == against
            and (r.variant == variant or against != "untrained")}
    return Difference.paired(trained, base)


def glue_numbers(res: Result, cfg: Config) -> dict[str, object]:
    """Glue (myst-nb) the numbers and verdicts the chapter's prose quotes; returns them too."""
    from IPython.display import Markdown

    values: dict[str, object] = {"n_seeds": len({r.seed for r in res.main}),
                                 "n_concepts": len(res.concepts.names)}
    pcc = by_label(res.main + res.controls, "mean_pcc")
    spear = by_label(res.main + res.controls, "mean_pcc_spearman")
    held = by_label(res.main + res.controls, "mean_pcc_heldout")
    for v in VARIANTS:  # every key exists, NaN for a variant that was not run
        lab, ran = VARIANT_LABELS[v], any(r.variant == v for r in res.main)
        nan = np.array([np.nan])
        values[f"{v}_pcc"] = pcc.get(lab, nan).mean()
        values[f"{v}_spearman"] = spear.get(lab, nan).mean()
        values[f"{v}_untrained_pcc"] = pcc.get(f"untrained {lab}", nan).mean()
        values[f"{v}_untrained_spearman"] = spear.get(f"untrained {lab}", nan).mean()
        values[f"{v}_heldout"] = held.get(lab, nan).mean()
        for key, suffix in (("mean_pcc", ""), ("mean_pcc_spearman", "_spearman"),
                            ("mean_pcc_heldout", "_heldout")):
            # Random features at the top-k variants' sparsity: dense random codes score higher
            # on this metric, so a sparse SAE is judged against chance at its own sparsity.
            for against, tag in (("untrained", ""), ("random_topk", "_random")):
                gain = paired_gain(res, v, key, against) if ran else Difference.of([])
                values[f"{v}_gain{tag}{suffix}"] = gain.mean
                values[f"{v}_gain{tag}{suffix}_se"] = gain.se
                values[f"{v}_verdict{tag}{suffix}"] = Markdown(BEATS(gain) if ran
                                                                else "was not run against")
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
    return glue_values(values)


def table_2(res: Result):
    """Per-concept assigned PCC of each variant (mean over seeds) next to the paper's Table 2,
    then the controls' columns (untrained variants, random features, model dimensions, the
    ceiling), computed on the same words by the same metric."""
    import pandas as pd

    runs, concepts, n = res.main, res.concepts, len(res.concepts.names)
    cols = {}
    for i, v in enumerate(VARIANTS):
        mine = [r.final["pcc_K"] for r in runs if r.variant == v]
        if mine:
            cols[f"ours {VARIANT_LABELS[v]}"] = np.mean(mine, 0)
        cols[f"paper {VARIANT_LABELS[v]}"] = [PAPER_TABLE2[paper_name(n)][i]
                                              for n in concepts.names]
    for kind in CONTROLS:
        for lab in dict.fromkeys(label(r) for r in res.controls if r.kind == kind):
            cols[lab] = np.mean([r.final["pcc_K"] for r in res.controls if label(r) == lab], 0)
    table = pd.DataFrame(cols, index=list(concepts.names))
    table.loc["mean PCC"] = table.mean()
    for c in table.columns:
        if c.startswith("paper"):
            table.loc["mean PCC", c] = PAPER_MEAN[VARIANTS.index(_variant_of(c))]
    table.loc[f"coverage@{res.threshold:g} ({n} rows)"] = (table.iloc[:n] > res.threshold).mean()
    return table


def _variant_of(column: str) -> str:
    name = column.split(" ", 1)[1]
    return next(v for v, lab in VARIANT_LABELS.items() if lab == name)


LONG_SHOWN = ("n_tokens", "n_features", "steps", "batch_size", "k", "lr", "seeds", "model")


def table_long_settings(summary: dict[str, Any]) -> "pandas.DataFrame":
    """The settings the long setting's cached summary was computed with (those that differ from
    the default profile's, and the main sizes), and its wall time."""
    import pandas as pd

    default = Config().to_dict()
    settings = summary["settings"]
    keys = [k for k in settings if k in LONG_SHOWN or settings[k] != default.get(k)]
    rows = {k: str(settings[k]) for k in keys}
    rows["wall time (this machine)"] = f"{summary.get('wall_seconds', float('nan')) / 60:.0f} min"
    return pd.DataFrame({"value": rows})


def glue_long_numbers(summary: dict[str, Any] | None) -> dict[str, object]:
    """Glue the long setting's numbers (NaN and a note when no summary exists)."""
    from IPython.display import Markdown

    values: dict[str, object] = {}
    for v in VARIANTS:
        run = (summary or {}).get("variants", {}).get(v)
        first = run["mean_pcc"][0] - run["untrained_pcc"] if run else float("nan")
        last = run["mean_pcc"][-1] - run["untrained_pcc"] if run else float("nan")
        values[f"long_{v}_first"], values[f"long_{v}_last"] = first, last
        values[f"long_{v}_l0"] = run["val_l0"][-1] if run else float("nan")
    if summary:
        runs = summary["variants"]
        values["long_tokens"] = max(max(r["tokens"]) for r in runs.values())
        order = sorted(runs, key=lambda v: -(runs[v]["mean_pcc"][-1] - runs[v]["untrained_pcc"]))
        values["long_order"] = Markdown(" > ".join(VARIANT_LABELS[v] for v in order))
    else:
        values["long_tokens"] = float("nan")
        values["long_order"] = Markdown("(not computed: run `ipta sae-long`)")
    return glue_values(values)
