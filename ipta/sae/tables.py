"""The SAE chapter's tables: one row per run, the chance levels, the verdicts, the planted
benchmark, Table 2 beside the paper's and beside its controls, and the long setting's settings.
Each returns a plain DataFrame (the notebook shows it as a page table, :mod:`ipta.tables`);
``res`` is the chapter's Result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ipta.sae.config import VARIANTS, Config
from ipta.sae.controls import CONTROLS
from ipta.sae.labels import (AGAINST_LABELS, READING_LABELS, VARIANT_LABELS, by_label, label,
                             uses)
from ipta.sae.paper import PAPER_MEAN, PAPER_TABLE2, paper_name
from ipta.sae.planted import scores as planted_scores
from ipta.sae.runs import Run
from ipta.sae.verdicts import READINGS as READINGS_KEYS

if TYPE_CHECKING:
    import pandas


SUMMARY_METRICS = {"mean_pcc": "mean PCC", "coverage": "coverage", "mean_pcc_heldout":
                   "held-out PCC", "val_mse": "val MSE", "val_fvu": "FVU", "val_l0": "L0",
                   "val_dead": "dead"}
"""The final metrics of a run the summary shows, and their headers (the concept metric's other
readings are in the chance and verdict tables, the L0 on the pair words in the chance table)."""


def table_summary(runs: list[Run]):
    """One row per run: variant, seed, k/alpha where they set the variant (blank elsewhere), and
    the final metrics (Table 2's right side)."""
    import pandas as pd

    rows = [{"variant": label(r), "seed": r.seed,
             "k": r.k if uses(r, "k") else None,
             "alpha": r.alpha if r.kind == "trained" and uses(r, "alpha") else None,
             **{name: r.final.get(m, np.nan) for m, name in SUMMARY_METRICS.items()}}
            for r in runs]
    return pd.DataFrame(rows)


def table_chance(res: Any):
    """Each trained variant beside the controls that learned nothing: the concept metric in
    every reading (mean over seeds; the figure below shows the spread) and the L0 on the pair
    words, the same measure for every row. Random features matched to a variant's codes have
    that variant's values feature by feature, so its L0 too."""
    import pandas as pd

    runs = res.main + res.controls
    table = pd.DataFrame({READING_LABELS[reading]: {k: v.mean() for k, v in
                                                    by_label(runs, key).items()}
                          for reading, key in READINGS_KEYS.items()})
    l0 = {lab: v.mean() for lab, v in by_label(runs, "pairs_l0").items()}
    seeds = {lab: len(v) for lab, v in by_label(runs, "pairs_l0").items()}
    for variant, scores in res.verdicts.get("matched", {}).items():
        name = f"random, matched to {VARIANT_LABELS[variant]}"
        table.loc[name] = [scores[reading] for reading in READINGS_KEYS]
        l0[name], seeds[name] = l0[VARIANT_LABELS[variant]], len(res.verdicts["seeds"])
    table["L0 (pairs)"] = [l0[k] for k in table.index]
    table["seeds"] = [seeds[k] for k in table.index]
    return table.round(3)


def table_verdicts(verdicts: dict[str, Any]) -> "pandas.DataFrame":
    """The verdict table: each variant against each control (rows) in each reading (columns),
    the gain in mean PCC and ✓ where it survives Holm's correction over the whole table."""
    import pandas as pd

    rows = verdicts["rows"]
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        key = (VARIANT_LABELS[r["variant"]], AGAINST_LABELS[r["against"]])
        cells.setdefault(key, {})[READING_LABELS[r["reading"]]] = \
            f"{r['gain']:+.3f} {'✓' if r['beats'] else '✗'}"
    table = pd.DataFrame.from_dict(cells, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["variant", "against"])
    return table


def table_planted(planted: dict[str, Any]) -> "pandas.DataFrame":
    """The planted benchmark: every system's mean PCC in every reading and its L0 on the pair
    words (means over seeds)."""
    import pandas as pd

    scores = planted_scores(planted)
    table = pd.DataFrame({READING_LABELS[r]: {n: v[k] for n, v in scores.items()}
                          for r, k in READINGS_KEYS.items()}).round(3)
    table["L0 (pairs)"] = [round(v["pairs_l0"], 1) for v in scores.values()]
    return table


def table_2(res: Any):
    """Per-concept assigned PCC of each variant (mean over seeds) next to the paper's Table 2,
    with the mean and coverage rows (the paper's own mean where it reports one)."""
    import pandas as pd

    concepts = res.concepts
    cols = {}
    for i, v in enumerate(VARIANTS):
        mine = [r.final["pcc_K"] for r in res.main if r.variant == v]
        if mine:
            cols[f"ours {VARIANT_LABELS[v]}"] = np.mean(mine, 0)
        cols[f"paper {VARIANT_LABELS[v]}"] = [PAPER_TABLE2[paper_name(n)][i]
                                              for n in concepts.names]
    table = _with_mean_and_coverage(pd.DataFrame(cols, index=list(concepts.names)), res)
    for c in table.columns:
        if c.startswith("paper"):
            table.loc["mean PCC", c] = PAPER_MEAN[VARIANTS.index(_variant_of(c))]
    return table


def table_2_controls(res: Any):
    """The controls' columns beside Table 2, computed on the same words by the same metric:
    the untrained variants, random features, the model's own dimensions and the ceiling."""
    import pandas as pd

    cols = {}
    for kind in CONTROLS:
        for lab in dict.fromkeys(label(r) for r in res.controls if r.kind == kind):
            cols[lab] = np.mean([r.final["pcc_K"] for r in res.controls if label(r) == lab], 0)
    return _with_mean_and_coverage(pd.DataFrame(cols, index=list(res.concepts.names)), res)


def _with_mean_and_coverage(table, res: Any):
    n = len(table)
    table.loc["mean PCC"] = table.mean()
    table.loc[f"coverage@{res.threshold:g} ({n} rows)"] = (table.iloc[:n] > res.threshold).mean()
    return table.rename_axis("concept")


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
