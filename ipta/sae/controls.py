"""Chance levels and the ceiling of the concept metric (appendix H.2): codes that learned
nothing, scored by the same code path (:func:`ipta.sae.metrics.score_codes`) on the same words
as the trained SAEs, so that "variant A beats variant B" can be read against "A beats chance".

- ``untrained``: each variant at step 0 (same initialisation, input normalisation and, for
  batch-top-k, the same inference threshold rule as the trained run);
- ``random``: ReLU of a random projection to F features, in the SAE's normalised units;
- ``random_topk``: the same, keeping each word's k largest (the top-k variants' sparsity);
- ``model_dims``: the model's own D activation dimensions, both signs (2D features);
- ``ceiling``: the probe logits themselves as codes, a perfect log-odds feature per concept.

``cfg`` below is the SAE chapter's Config. The controls' scores are cached as one entry
(``sae_controls``), keyed like the runs plus the seeds and variants they cover.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ipta.cache import get_or_build_dir
from ipta.sae import metrics
from ipta.sae.runs import (ConceptData, Run, calibration_sample, concept_spec,
                           mechanism_hparams, reference_training)

CONTROLS = ("untrained", "random", "random_topk", "model_dims", "ceiling")
CONTROL_LABELS = {"untrained": "untrained", "random": "random features",
                  "random_topk": "random features, top-k", "model_dims": "model dimensions (±)",
                  "ceiling": "ceiling: probe logits"}


def untrained_sae(cfg, variant: str, seed: int, store, *, k: int | None = None,
                  alpha: float | None = None):
    """The SAE that training ``variant`` with ``seed`` starts from, as inference would use it."""
    import torch

    from ipta.sae.model import SparseAutoencoder
    from ipta.sae.train import fit_normalisation

    k = cfg.k if k is None else k
    alpha = cfg.alpha if alpha is None else alpha
    hp = mechanism_hparams(cfg, variant, seed, alpha, k)
    sae = SparseAutoencoder(store.d_model, cfg.n_features, variant, hp, seed=seed)
    train = store.split(0, store.n_tokens - cfg.val_tokens)
    fit_normalisation(sae, train, seed,
                      b_pre_init=reference_training(cfg, variant)["b_pre_init"])
    if variant == "batchtopk" and cfg.batchtopk_threshold == "calibrated":
        with torch.no_grad():
            xn_ND = calibration_sample(train, seed) * sae.input_scale
            sae.mechanism.calibrate(sae.pre_activations(xn_ND))
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


def controls(cfg, store, concepts: ConceptData) -> list[Run]:
    """Every control of :data:`CONTROLS` for every seed (``model_dims`` and ``ceiling`` once:
    they have no randomness), scored like the trained runs; read from the cache when there."""
    # The controls cover every seed and variant, at the chapter's own k and alpha: only the
    # alpha sweep and the matched-L0 switch leave them unchanged.
    spec = {"config": cfg.cache_spec(exclude=("alphas", "matched_l0")),
            "activations": store.directory.name,
            "concepts": concept_spec(concepts)}

    def build(tmp: Path) -> None:
        rows = [{"kind": r.kind, "variant": r.variant, "seed": r.seed, "k": r.k,
                 "final": r.final} for r in _compute(cfg, store, concepts)]
        (tmp / "controls.json").write_text(json.dumps(rows))

    path = get_or_build_dir("sae_controls", spec, build, code=("ipta.sae.controls",))
    return [_control(row["kind"], row["variant"], row["seed"], row["k"], row["final"])
            for row in json.loads((path / "controls.json").read_text())]


def _compute(cfg, store, concepts: ConceptData) -> list[Run]:
    out: list[Run] = []
    val_ND = store.split(store.n_tokens - cfg.val_tokens, store.n_tokens).all()
    threshold = cfg.pcc_threshold
    for seed in cfg.seeds:
        for variant in cfg.variants:
            sae = untrained_sae(cfg, variant, seed, store)
            out.append(_control("untrained", variant, seed, cfg.k, metrics.evaluate(
                sae, val_ND, concepts.reps_ND, concepts.logits_NK, threshold, concepts.heldout)))
        reference = untrained_sae(cfg, "panneal" if "panneal" in cfg.variants else cfg.variants[0],
                                  seed, store)
        xn_ND = _normalised(reference, concepts.reps_ND)
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
