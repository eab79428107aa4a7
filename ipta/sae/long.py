"""The SAE chapter's long setting: does the answer depend on scale? (``ipta sae-long``)

The default profile trains for 500 steps; the long setting trains every variant once for
longer, on more tokens, with a wider dictionary, and keeps a small summary of its evaluations
that the page draws without retraining.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ipta.sae.config import Config
from ipta.sae.runs import Run

LONG = {"n_tokens": 200_000, "max_windows_per_doc": 0, "val_tokens": 8192, "n_features": 2048,
        "steps": 5000, "eval_every": 500, "checkpoint_every": 1000, "seeds": (0,), "alphas": (),
        "matched_l0": False, "dead_after_tokens": 400_000, "target_l0": 32,
        "curve_readings": "all"}
"""Does the answer depend on scale? The ``long`` setting (overrides of the default profile):
more tokens, more steps, a wider dictionary, every variant once. The p-annealing family steers
its penalty towards the top-k variants' k (``target_l0``) so that all four end at the same
sparsity. A first steering rule (up to e^0.1 a step up, about 1% down) collapsed their
dictionaries in the run of 2026-12-03 (held-out L0 about 2 until step 2,500); the rule now is
symmetric in log(L0 / target) and capped at 1% a step
(:meth:`ipta.sae.mechanisms.annealing.PAnneal._steer`), and in the rerun of the same day
p-annealing and structured stayed between held-out L0 29.6 and 38.2 from the second
evaluation on and ended at 30 (top-k 32, batch-top-k 35). ``ipta sae-long`` trains the
setting (about 22 minutes on 2 CPU cores, minutes on a GPU) and writes :data:`LONG_RESULT`, a
small summary the page draws without retraining; the runs go through the cache like the
chapter's."""

LONG_RESULT = Path("book") / "results" / "sae_long.json"
"""The long setting's summary, relative to the project root."""

FORMAT = 2
"""The summary's layout (1: the paper's reading and held out only)."""

SERIES = ("mean_pcc", "mean_pcc_raw", "mean_pcc_spearman", "mean_pcc_exp_std",
          "mean_pcc_heldout", "pairs_fvu", "val_fvu", "val_l0", "pairs_l0", "pairs_code_p99")
"""What the summary keeps at every evaluation: every reading of the metric, reconstruction on
the pair words and held-out tokens, sparsity, and the size of the codes."""


def long_config(**overrides: Any) -> Config:
    """The Config of the long setting (``overrides`` on top, checked like any parameter)."""
    return Config.for_profile("default", **{**LONG, **overrides})


def summarise_long(main: list[Run], controls: list[Run], cfg: Config) -> dict[str, Any]:
    """Per variant of the ``main`` runs: training tokens at each evaluation and every series of
    :data:`SERIES` there; the untrained version's and sparse random features' final values of
    the same (from ``controls``)."""
    untrained = {r.variant: r.final for r in controls if r.kind == "untrained"}
    random_topk = next(r.final for r in controls if r.kind == "random_topk")
    out: dict[str, Any] = {"format": FORMAT, "settings": cfg.to_dict(), "variants": {}}
    for r in main:
        history = [h for h in r.history if "mean_pcc" in h]
        out["variants"][r.variant] = {
            "tokens": [h["step"] * cfg.batch_size for h in history],
            **{key: [h.get(key) for h in history] for key in SERIES},
            "untrained": {key: untrained[r.variant].get(key) for key in SERIES},
            "random_topk": {key: random_topk.get(key) for key in SERIES}}
    return out


def load_long(path: str | Path | None = None) -> dict[str, Any] | None:
    """The long setting's summary from this checkout's ``book/results`` (None if absent)."""
    path = Path(path) if path else Path(__file__).resolve().parents[2] / LONG_RESULT
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    return summary if summary.get("format") == FORMAT else None  # older layouts: rerun
