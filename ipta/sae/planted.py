"""A planted ground truth for the SAE chapter's concept metric: activations made from a known
dictionary with sparse codes, concepts that are known atoms, and counterfactual word pairs made
the way the paper's are, scored by the chapter's own code.

Tokens: ``x = z W + e`` with ``W`` the ``n_atoms x D`` true dictionary (unit rows), ``z`` sparse
(each atom active with probability ``active / n_atoms``, an active code drawn from
``0.5 + Exp(1)``) and ``e`` Gaussian noise of RMS ``noise`` per dimension. Concept k is atom k:
its log-odds are a known increasing function of ``z_k`` alone. A word pair of concept k is two
"words" that share everything (the other atoms, drawn as for a token, and the noise) except
atom k: present in the base word (code ``1 + U(0, 1)``), absent in the target. So the paper's
pipeline applies unchanged: one probe per concept on its pairs, its logits on every word, the
codes of every word, correlations and the Hungarian assignment (appendix H.2).

The true codes of the pair words are what a perfect SAE would output; the chapter trains its
variants on the planted tokens with its own training code, builds untrained copies and random
features with its own controls, and reads the metric in every reading, so the page can show
what "the metric finds the concepts" looks like, and how the metric moves with the scale and
the density of codes whose information is fixed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from ipta.cache import get_or_build_dir
from ipta.sae.config import Config
from ipta.sae.controls import CONTROL_LABELS
from ipta.sae.labels import VARIANT_LABELS
from ipta.sae.runs import ConceptData, heldout_view
from ipta.sae.verdicts import READINGS


@dataclasses.dataclass(frozen=True)
class Planted:
    """The planted benchmark's sizes (small enough that the section trains in seconds)."""

    d_model: int = 64
    n_atoms: int = 128
    """True dictionary size; concept k is atom k."""
    active: float = 4.0
    """Mean active atoms per token."""
    n_concepts: int = 16
    pairs_per_concept: int = 24
    n_tokens: int = 40_000
    noise: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.n_concepts <= self.n_atoms:
            raise ValueError(f"n_concepts {self.n_concepts} must lie in [2, n_atoms]")


PLANTED = Planted()
"""The chapter's planted benchmark."""

OVERRIDES = {"n_features": 128, "k": 4, "n_tokens": 40_000, "val_tokens": 4096,
             "batch_size": 256, "lr": 3e-3, "warmup_steps": 50, "sparsity_warmup_steps": 50,
             "initial_penalty": 1.0, "eval_every": 100, "checkpoint_every": 0,
             "dead_after_tokens": 20_000, "alphas": (), "matched_l0": False, "k_aux": 64}
"""The SAE chapter's settings on the planted tokens: a dictionary as wide as the true one, k at
the true mean number of active atoms, and a short, fast schedule (``cfg.planted_steps``)."""


def planted_config(cfg: Config, planted: Planted = PLANTED) -> Config:
    """The chapter's ``cfg`` with :data:`OVERRIDES` for the planted tokens, trained for
    ``cfg.planted_steps`` (the variants, seeds and verdict settings stay the chapter's)."""
    return cfg.replace(**{**OVERRIDES, "n_tokens": planted.n_tokens,
                          "steps": cfg.planted_steps,
                          "eval_every": min(OVERRIDES["eval_every"], cfg.planted_steps),
                          "warmup_steps": min(OVERRIDES["warmup_steps"], cfg.planted_steps - 1),
                          "sparsity_warmup_steps": min(OVERRIDES["sparsity_warmup_steps"],
                                                       cfg.planted_steps)})


@dataclasses.dataclass(frozen=True)
class PlantedData:
    """The true dictionary, the pair words' representations and true codes, and their labels."""

    W_AD: np.ndarray
    reps_ND: np.ndarray
    codes_NA: np.ndarray
    concept_N: np.ndarray
    label_N: np.ndarray


def _codes(rng: np.random.Generator, n: int, planted: Planted) -> np.ndarray:
    on_NA = rng.random((n, planted.n_atoms)) < planted.active / planted.n_atoms
    return np.where(on_NA, 0.5 + rng.exponential(1.0, (n, planted.n_atoms)), 0.0)


def dictionary(planted: Planted) -> np.ndarray:
    """The true dictionary: ``n_atoms`` random unit rows in D dimensions."""
    rng = np.random.default_rng([planted.seed, 1])
    W_AD = rng.standard_normal((planted.n_atoms, planted.d_model))
    return W_AD / np.linalg.norm(W_AD, axis=1, keepdims=True)


def tokens(planted: Planted) -> np.ndarray:
    """The planted activations the SAEs train on: ``n_tokens x D``, float32."""
    rng = np.random.default_rng([planted.seed, 2])
    z_NA = _codes(rng, planted.n_tokens, planted)
    noise = planted.noise * rng.standard_normal((planted.n_tokens, planted.d_model))
    return (z_NA @ dictionary(planted) + noise).astype(np.float32)


def pair_words(planted: Planted) -> PlantedData:
    """Each concept's counterfactual pairs, base then target, concept after concept: the same
    context and noise, atom k present in the base word and absent in the target."""
    rng = np.random.default_rng([planted.seed, 3])
    W_AD = dictionary(planted)
    codes, concept, label = [], [], []
    for k in range(planted.n_concepts):
        context_PA = _codes(rng, planted.pairs_per_concept, planted)
        context_PA[:, k] = 0.0
        present_P = 1.0 + rng.random(planted.pairs_per_concept)
        for context_A, value in zip(context_PA, present_P):
            base_A = context_A.copy()
            base_A[k] = value
            codes += [base_A, context_A]
            concept += [k, k]
            label += [1, 0]
    codes_NA = np.array(codes)
    noise = planted.noise * rng.standard_normal((len(codes_NA) // 2, planted.d_model))
    reps_ND = codes_NA @ W_AD + np.repeat(noise, 2, axis=0)  # a pair shares its noise
    return PlantedData(W_AD, reps_ND.astype(np.float32), codes_NA, np.array(concept),
                       np.array(label))


def planted_store(planted: Planted = PLANTED):
    """The planted tokens as an activation store (a cache entry in the store's own layout), so
    the chapter's training code reads them as it reads a model's activations."""
    from ipta.lm.corpus import ActivationStore

    def build(tmp: Path) -> None:
        x_ND = tokens(planted)
        np.save(tmp / "shard_00000.npy", x_ND)
        meta = {"shard_rows": [len(x_ND)], "n_tokens": len(x_ND), "d_model": x_ND.shape[1],
                "dtype": "float32", "layer": "planted"}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))

    path = get_or_build_dir("sae_planted_store", {"planted": planted}, build,
                            code=("ipta.sae.planted",))
    return ActivationStore(path)


def planted_concepts(cfg: Config, planted: Planted = PLANTED) -> ConceptData:
    """The planted pairs as the chapter's :class:`~ipta.sae.runs.ConceptData`: one probe per
    concept (the chapter's ``probe_C``), its logits on every word, and the held-out view."""
    from ipta.probes import fit_concept_probe

    data = pair_words(planted)
    names = tuple(f"atom {k}" for k in range(planted.n_concepts))
    probes = [fit_concept_probe(data.reps_ND[data.concept_N == k],
                                data.label_N[data.concept_N == k], C=cfg.probe_C)
              for k in range(planted.n_concepts)]
    logits_NK = np.stack([p.logits(data.reps_ND) for p in probes], axis=1)
    pairs = tuple(tuple((f"b{k}_{i}", f"t{k}_{i}") for i in range(planted.pairs_per_concept))
                  for k in range(planted.n_concepts))
    return ConceptData(names, "planted", data.reps_ND, logits_NK, data.concept_N, data.label_N,
                       heldout_view(data.reps_ND, data.concept_N, data.label_N, pairs,
                                    cfg.probe_C))


def rescaled(codes_NF: np.ndarray, scale: float) -> np.ndarray:
    """The same codes times ``scale``: the same information at another scale."""
    return codes_NF * scale


def densified(codes_NF: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """The same codes with ``share`` of their zeros replaced by tiny positive values (1e-3 of
    the codes' mean active value, below any active code): the same information, denser."""
    rng = np.random.default_rng([seed, 5])
    active = codes_NF[codes_NF > 0]
    tiny = 1e-3 * (active.mean() if active.size else 1.0)
    fill = (codes_NF == 0) & (rng.random(codes_NF.shape) < share)
    return np.where(fill, tiny * rng.random(codes_NF.shape), codes_NF)


SCALES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
"""Factors the perfect codes are rescaled by (information unchanged)."""
DENSITIES = (0.0, 0.01, 0.1, 0.5, 1.0)
"""Shares of the perfect codes' zeros made tiny and positive (information unchanged)."""


def benchmark(cfg: Config, progress: bool = False, planted: Planted = PLANTED
              ) -> dict[str, Any]:
    """The chapter's metric, controls and verdicts on the planted tokens and pairs.

    ``perfect``: the true codes' scores; ``runs``: each variant and seed trained on the planted
    tokens by the chapter's own code (its ``final`` evaluation); ``controls``: untrained copies
    and random features; ``scale`` and ``density``: the perfect codes' scores rescaled or made
    denser; ``verdicts``: every trained variant against every control (:mod:`ipta.sae.verdicts`),
    with the null comparisons' false-positive share."""
    from ipta.sae.controls import controls
    from ipta.sae.metrics import l0, score_codes
    from ipta.sae.runs import train_all
    from ipta.sae.verdicts import verdicts

    pcfg = planted_config(cfg, planted)
    store, concepts = planted_store(planted), planted_concepts(pcfg, planted)
    main, _, _ = train_all(pcfg, store, concepts, progress)
    truth = pair_words(planted).codes_NA

    def scored(codes: np.ndarray) -> dict[str, Any]:
        out = score_codes(codes, concepts.logits_NK, pcfg.pcc_threshold, concepts.heldout)
        return {**{k: v for k, v in out.items() if not k.endswith("_K")}, "pairs_l0": l0(codes)}

    return {"settings": dataclasses.asdict(planted), "overrides": OVERRIDES,
            "perfect": scored(truth),
            "runs": [{"variant": r.variant, "seed": r.seed, "final": r.final} for r in main],
            "controls": [{"kind": r.kind, "variant": r.variant, "seed": r.seed,
                          "final": r.final} for r in controls(pcfg, store, concepts)],
            "scale": {str(s): scored(rescaled(truth, s)) for s in SCALES},
            "density": {str(d): scored(densified(truth, d)) for d in DENSITIES},
            "verdicts": verdicts(pcfg, store, concepts, main)}


def scores(planted: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per system of the planted benchmark (the true codes, each variant trained and untrained,
    random features) and reading: the mean PCC over seeds, and its L0 on the pair words."""

    def mean(finals: list[dict[str, Any]]) -> dict[str, float]:
        keys = [*READINGS.values(), "pairs_l0"]
        return {k: float(np.mean([f[k] for f in finals])) for k in keys}

    out = {"true codes (a perfect SAE)": mean([planted["perfect"]])}
    variants = list(dict.fromkeys(r["variant"] for r in planted["runs"]))
    for v in variants:
        out[f"{VARIANT_LABELS[v]}, trained"] = mean([r["final"] for r in planted["runs"]
                                                     if r["variant"] == v])
    for v in variants:
        out[f"{VARIANT_LABELS[v]}, untrained"] = mean(
            [c["final"] for c in planted["controls"]
             if c["kind"] == "untrained" and c["variant"] == v])
    for kind in ("random_topk", "random"):
        out[CONTROL_LABELS[kind]] = mean([c["final"] for c in planted["controls"]
                                          if c["kind"] == kind])
    return out


def ranking(planted: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """Per reading: does the metric rank the true codes above every trained variant, every
    trained variant above its untrained copy (the planted verdicts, Holm-corrected), and the
    untrained copies near random features (within 0.05)?"""
    scored = scores(planted)
    trained = {n: v for n, v in scored.items() if n.endswith(", trained")}
    untrained = [v for n, v in scored.items() if n.endswith(", untrained")]
    randoms = [scored[CONTROL_LABELS[k]] for k in ("random_topk", "random")]
    rows = planted["verdicts"]["rows"]
    out = {}
    for reading, key in READINGS.items():
        beats = [r["beats"] for r in rows if r["against"] == "untrained"
                 and r["reading"] == reading]
        out[reading] = {
            "perfect_first": all(scored["true codes (a perfect SAE)"][key] > v[key]
                                 for v in trained.values()),
            "trained_beat_untrained": bool(beats) and all(beats),
            "untrained_near_random": all(min(abs(u[key] - r[key]) for r in randoms) < 0.05
                                         for u in untrained)}
    return out
