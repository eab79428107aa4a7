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

LONG = {"n_tokens": 200_000, "val_tokens": 8192, "n_features": 2048, "steps": 5000,
        "eval_every": 500, "checkpoint_every": 1000, "seeds": (0,), "alphas": (),
        "matched_l0": False, "dead_after_tokens": 400_000}
"""Does the answer depend on scale? The ``long`` setting (overrides of the default profile):
more tokens, more steps, a wider dictionary, every variant once. ``ipta sae-long`` trains it
(about half an hour on 2 CPU cores, minutes on a GPU) and writes :data:`LONG_RESULT`, a small
summary the page draws without retraining; the runs go through the cache like the chapter's."""

LONG_RESULT = Path("book") / "results" / "sae_long.json"
"""The long setting's summary, relative to the project root."""


def long_config(**overrides: Any) -> Config:
    """The Config of the long setting (``overrides`` on top, checked like any parameter)."""
    return Config.for_profile("default", **{**LONG, **overrides})


def summarise_long(main: list[Run], controls: list[Run], cfg: Config) -> dict[str, Any]:
    """Per variant of the ``main`` runs: training tokens at each evaluation, the metric there
    (paper's reading and held out), and the untrained version's and sparse random features'
    scores (from ``controls``)."""
    untrained = {r.variant: r.final for r in controls if r.kind == "untrained"}
    random_topk = [r.final for r in controls if r.kind == "random_topk"]
    out: dict[str, Any] = {"settings": cfg.to_dict(), "variants": {}}
    for r in main:
        history = [h for h in r.history if "mean_pcc" in h]
        out["variants"][r.variant] = {
            "tokens": [h["step"] * cfg.batch_size for h in history],
            "mean_pcc": [h["mean_pcc"] for h in history],
            "mean_pcc_heldout": [h.get("mean_pcc_heldout") for h in history],
            "val_l0": [h["val_l0"] for h in history],
            "untrained_pcc": untrained[r.variant]["mean_pcc"],
            "untrained_heldout": untrained[r.variant].get("mean_pcc_heldout"),
            "random_topk_pcc": random_topk[0]["mean_pcc"]}
    return out


def load_long(path: str | Path | None = None) -> dict[str, Any] | None:
    """The long setting's summary from this checkout's ``book/results`` (None if absent)."""
    path = Path(path) if path else Path(__file__).resolve().parents[2] / LONG_RESULT
    return json.loads(path.read_text()) if path.is_file() else None
