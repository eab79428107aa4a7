"""How the SAE chapter names its runs in tables and figures: each trained variant by its
mechanism's label, each control by what it is."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ipta.sae.controls import CONTROL_LABELS
from ipta.sae.runs import Run


class _Labels(Mapping[str, str]):
    """Each registered variant's name in tables and prose, read from its mechanism class."""

    def __getitem__(self, variant: str) -> str:
        from ipta.sae.mechanisms import MECHANISMS

        if variant not in MECHANISMS:
            raise KeyError(variant)
        return MECHANISMS[variant].label

    def __iter__(self):
        from ipta.sae.mechanisms import MECHANISMS

        return iter(MECHANISMS)

    def __len__(self) -> int:
        from ipta.sae.mechanisms import MECHANISMS

        return len(MECHANISMS)


VARIANT_LABELS = _Labels()
"""variant -> its label (:attr:`ipta.sae.mechanisms.Mechanism.label`)."""


def label(r: Run) -> str:
    """A run's name in tables: the variant, or the control it is."""
    if r.kind == "trained":
        return VARIANT_LABELS[r.variant]
    if r.kind == "untrained":
        return f"untrained {VARIANT_LABELS[r.variant]}"
    return CONTROL_LABELS[r.kind]


def uses(r: Run, knob: str) -> bool:
    """Whether run ``r``'s variant is set by ``knob`` (``k`` or ``alpha``); False for a control
    that is no registered variant."""
    from ipta.sae.mechanisms import MECHANISMS

    kind = MECHANISMS.get(r.variant)
    return kind is not None and getattr(kind, f"uses_{knob}")


def by_label(runs: list[Run], key: str) -> dict[str, np.ndarray]:
    """Per table label, the values of ``key`` over seeds (in seed order)."""
    out: dict[str, list[float]] = {}
    for r in sorted(runs, key=lambda r: r.seed):
        out.setdefault(label(r), []).append(r.final.get(key, np.nan))
    return {k: np.array(v, dtype=float) for k, v in out.items()}


READING_LABELS = {"paper": "paper's", "raw": "raw", "spearman": "Spearman",
                  "exp_std": "exp(std)", "heldout": "held out"}
"""Short names of the readings of the concept metric (:data:`ipta.sae.verdicts.READINGS`)."""
AGAINST_LABELS = {"untrained": "untrained copy", "random_topk": "random, top-k",
                  "random_matched": "random, matched", "trained_panneal": "p-annealing"}
"""Short names of the controls every variant is tested against."""

AGAINST_TEXT = {"untrained": "its untrained copy",
                "random_topk": "random features at top-k sparsity",
                "random_matched": "random features matched to its codes",
                "trained_panneal": "the trained p-annealing SAE"}
