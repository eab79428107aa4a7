"""Chance levels and the ceiling of the concept metric (appendix H.2): codes that learned
nothing, scored by the same code path (:func:`ipta.sae.metrics.score_codes`) on the same words
as the trained SAEs, so that "variant A beats variant B" can be read against "A beats chance".

- ``untrained``: each variant at step 0 (same initialisation, input normalisation and, for
  batch-top-k, the same inference threshold rule as the trained run);
- ``random``: ReLU of a random projection to F features, in the SAE's normalised units;
- ``random_topk``: the same, keeping each word's k largest (the top-k variants' sparsity);
- ``model_dims``: the model's own D activation dimensions, both signs (2D features);
- ``ceiling``: the probe logits themselves as codes, a perfect log-odds feature per concept.

``cfg`` is the SAE chapter's :class:`~ipta.sae.config.Config`. The controls' scores are cached as one entry
(``sae_controls``), keyed like the runs plus the seeds and variants they cover.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ipta.cache import call_spec, get_or_build_dir
from ipta.sae import metrics
from ipta.sae.config import Config
from ipta.sae.runs import (VERDICT_FIELDS, ConceptData, Run, calibrate, calibration_sample,
                           data_split,
                           mechanism, new_sae)

CONTROLS = ("untrained", "random", "random_topk", "model_dims", "ceiling")
CONTROL_LABELS = {"untrained": "untrained", "random": "random features",
                  "random_topk": "random features, top-k", "model_dims": "model dimensions (±)",
                  "ceiling": "ceiling: probe logits"}


def untrained_sae(cfg: Config, variant: str, seed: int, store, *, k: int | None = None,
                  alpha: float | None = None):
    """The SAE that training ``variant`` with ``seed`` starts from, as inference would use it:
    the same initialisation, input normalisation and (where the variant calibrates one) the
    same inference rule as the trained run."""
    from ipta.sae.train import fit_normalisation

    kind = mechanism(variant)
    sae = new_sae(cfg, variant, seed, store.d_model, alpha=cfg.alpha if alpha is None else alpha,
                  k=cfg.k if k is None else k)
    train, _ = data_split(cfg, store)
    fit_normalisation(sae, train, seed, b_pre_init=kind.training(cfg)["b_pre_init"])
    if kind.calibrates(cfg):
        calibrate(sae, calibration_sample(train, seed))
    return sae


def normalised_units(cfg: Config, seed: int, store):
    """An SAE of ``seed`` whose input scale and pre-encoder bias (the mean of the normalisation
    sample) define the units random features are drawn in: those of every variant that starts
    its bias at the mean."""
    from ipta.sae.train import fit_normalisation

    sae = new_sae(cfg, cfg.variants[0], seed, store.d_model, alpha=cfg.alpha, k=cfg.k)
    fit_normalisation(sae, data_split(cfg, store)[0], seed, b_pre_init="mean")
    return sae


def _normalised(sae, x_ND: np.ndarray) -> np.ndarray:
    """Inputs in an SAE's normalised, centred units: x * input_scale - b_pre."""
    scale = float(sae.input_scale)
    return x_ND.astype(np.float64) * scale - sae.b_pre_D.detach().numpy().astype(np.float64)


def random_codes(xn_ND: np.ndarray, n_features: int, seed: int, keep: int | None = None
                 ) -> np.ndarray:
    """ReLU(xn R) with R's F columns random unit vectors; ``keep``: each row's largest only."""
    rng = np.random.default_rng([seed, 7919])
    R_DF = rng.standard_normal((xn_ND.shape[1], n_features))
    R_DF /= np.linalg.norm(R_DF, axis=0, keepdims=True)
    codes_NF = np.maximum(xn_ND @ R_DF, 0.0)
    if keep is not None and keep < n_features:
        kth = np.partition(codes_NF, -keep, axis=1)[:, [-keep]]
        codes_NF = np.where(codes_NF >= kth, codes_NF, 0.0)
    return codes_NF


def _control(kind: str, variant: str, seed: int, k: int, final: dict[str, Any]) -> Run:
    return Run(variant, seed, 0.0, k, [], final, None, kind=kind)


def controls(cfg: Config, store, concepts: ConceptData) -> list[Run]:
    """Every control of :data:`CONTROLS` for every seed (``model_dims`` and ``ceiling`` once:
    they have no randomness), scored like the trained runs; read from the cache when there.

    Keyed by every argument: ``cfg`` without the fields that only choose which trained runs
    exist besides the main ones (the alpha sweep, the matched-L0 switch), the store and the
    concept data."""
    spec = call_spec(controls, locals(), replace={
        "cfg": cfg.cache_spec(exclude=("alphas", "matched_l0") + VERDICT_FIELDS),
        "store": store.directory.name})

    def build(tmp: Path) -> None:
        rows = [{"kind": r.kind, "variant": r.variant, "seed": r.seed, "k": r.k,
                 "final": r.final} for r in _compute(cfg, store, concepts)]
        (tmp / "controls.json").write_text(json.dumps(rows))

    path = get_or_build_dir("sae_controls", spec, build, code=("ipta.sae.controls",))
    return [_control(row["kind"], row["variant"], row["seed"], row["k"], row["final"])
            for row in json.loads((path / "controls.json").read_text())]


def _compute(cfg: Config, store, concepts: ConceptData) -> list[Run]:
    out: list[Run] = []
    _, val_ND = data_split(cfg, store)
    threshold = cfg.pcc_threshold
    for seed in cfg.seeds:
        for variant in cfg.variants:
            sae = untrained_sae(cfg, variant, seed, store)
            out.append(_control("untrained", variant, seed, cfg.k, metrics.evaluate(
                sae, val_ND, concepts.reps_ND, concepts.logits_NK, threshold, concepts.heldout)))
        xn_ND = _normalised(normalised_units(cfg, seed, store), concepts.reps_ND)
        for kind, keep in (("random", None), ("random_topk", cfg.k)):
            codes = random_codes(xn_ND, cfg.n_features, seed, keep)
            out.append(_control(kind, kind, seed, cfg.k, {
                **metrics.score_codes(codes, concepts.logits_NK, threshold, concepts.heldout),
                "pairs_l0": metrics.l0(codes)}))
        if seed == cfg.seeds[0]:
            dims = np.concatenate([xn_ND, -xn_ND], axis=1)
            out.append(_control("model_dims", "model_dims", seed, 0, {
                **metrics.score_codes(dims, concepts.logits_NK, threshold, concepts.heldout),
                "pairs_l0": metrics.l0(dims)}))
            out.append(_control("ceiling", "ceiling", seed, 0, {
                **metrics.score_codes(concepts.logits_NK, concepts.logits_NK, threshold,
                                      concepts.heldout),
                "pairs_l0": float(concepts.logits_NK.shape[1])}))
    return out
