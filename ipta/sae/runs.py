"""Training and evaluating the SAE chapter's runs: the concept data of appendix H.2 and one
cached, resumable training run per (variant, seed, alpha, k).

``cfg`` below is the SAE chapter's Config (:mod:`ipta.sae.chapter`). A run's cache key is derived:
every field of ``cfg`` that can change a result, except the sweep's own axes (which variants,
seeds and alphas exist: :data:`SWEEP_FIELDS`), which the run keys by its own variant, seed,
alpha and k; plus the activation store, the concept data and the code of this module and
everything it imports.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ipta.cache import (cache_root, distributed_world, entry_dir, get_or_build_dir,
                         get_or_build_dir_collective)
from ipta.sae import metrics

SWEEP_FIELDS = ("variants", "seeds", "alphas", "matched_l0", "alpha", "k")
"""Config fields that choose which runs exist, not what one run computes."""


@dataclass
class ConceptData:
    """Pair representations with their probe logits, the inputs of the H.2 metric."""

    names: tuple[str, ...]
    source: str
    reps_ND: np.ndarray
    logits_NK: np.ndarray
    concept_N: np.ndarray
    label_N: np.ndarray
    heldout: metrics.HeldOut | None = None
    """The metric's held-out view (:func:`heldout_view`)."""


@dataclass
class Run:
    """One SAE (or a control of :mod:`ipta.sae.controls`), its history over steps and its final
    evaluation."""

    variant: str
    seed: int
    alpha: float
    k: int
    history: list[dict[str, Any]]
    final: dict[str, Any]
    directory: Path | None
    kind: str = "trained"
    """``trained``, or the control it is (``untrained``, ``random``, ...)."""

    def sae(self):
        from ipta.sae.model import load_sae

        return load_sae(self.directory / "sae")


def activations(cfg, progress: bool = True, loaded=None):
    """The cached activation store of ``cfg`` (built on first use; ``loaded`` as in
    :func:`ipta.lm.corpus.cached_activations`)."""
    from ipta.lm.corpus import cached_activations

    return cached_activations(cfg.model, cfg.corpus, n_tokens=cfg.n_tokens,
                              revision=cfg.revision, layer=cfg.layer,
                              context_length=cfg.context_length, batch_size=cfg.extract_batch,
                              dtype=cfg.act_dtype, max_windows_per_doc=cfg.max_windows_per_doc,
                              device=cfg.device, progress=progress, loaded=loaded)


def concept_data(cfg, progress: bool = True, loaded=None) -> ConceptData:
    """Word-pair representations at ``cfg.layer`` and every concept probe's logits on all of them.

    Each concept's probe (base = 1, target = 0) is fitted on its own pairs; its logits are then
    taken on every word of every concept, so the K logit columns and the F feature columns
    share the same N rows, as eq. (93)-(95) stack them.
    """
    from ipta.lm.activations import cached_word_representations
    from ipta.lm.concepts import load_concept_set, paper_directory_named
    from ipta.probing.probes import fit_concept_probe

    source = cfg.concept_source
    if source == "auto":
        source = "paper" if paper_directory_named(cfg.word_pairs_dir) else "embedded"
    cs = load_concept_set(source, cfg.word_pairs_dir)
    words, concept_N, label_N = [], [], []
    for k, name in enumerate(cs.names):
        pairs = cs.pairs[name][:cfg.max_pairs_per_concept or None]
        for base, target in pairs:
            words += [base, target]
            concept_N += [k, k]
            label_N += [1, 0]
    reps_ND = cached_word_representations(cfg.model, words, revision=cfg.revision,
                                          layer=cfg.layer, device=cfg.device, progress=progress,
                                          loaded=loaded)
    concept_N, label_N = np.array(concept_N), np.array(label_N)
    probes = [fit_concept_probe(reps_ND[concept_N == k], label_N[concept_N == k], C=cfg.probe_C)
              for k in range(len(cs.names))]
    logits_NK = np.stack([p.logits(reps_ND) for p in probes], axis=1)
    pairs = tuple(tuple(map(tuple, cs.pairs[n][:cfg.max_pairs_per_concept or None]))
                  for n in cs.names)
    return ConceptData(cs.names, cs.source, reps_ND, logits_NK, concept_N, label_N,
                       heldout_view(reps_ND, concept_N, label_N, pairs, cfg.probe_C))


def heldout_view(reps_ND: np.ndarray, concept_N: np.ndarray, label_N: np.ndarray,
                 pairs: tuple[tuple[tuple[str, str], ...], ...], C: float,
                 seed: int = 0) -> metrics.HeldOut:
    """Split the words in halves (no word on both sides; duplicate and identical pairs dropped),
    fit each concept's probe on the first half's pairs and take its logits on every row.

    Rows come in (base, target) twos, concept after concept, in the order of ``pairs``."""
    from ipta.probing.probes import fit_concept_probe, word_split

    splits = word_split(pairs, 0.5, np.random.default_rng([seed, 404]))
    fit_N, score_N = np.zeros(len(reps_ND), bool), np.zeros(len(reps_ND), bool)
    first_row = 0
    for (fit, score), concept_pairs in zip(splits, pairs):
        for side, idx in ((fit_N, fit), (score_N, score)):
            side[first_row + 2 * idx] = side[first_row + 2 * idx + 1] = True
        first_row += 2 * len(concept_pairs)
    logits = []
    for k in range(len(pairs)):
        rows = fit_N & (concept_N == k)
        logits.append(fit_concept_probe(reps_ND[rows], label_N[rows], C=C).logits(reps_ND)
                      if rows.any() else np.zeros(len(reps_ND)))
    return metrics.HeldOut(np.stack(logits, axis=1), fit_N, score_N)


def mechanism_hparams(cfg, variant: str, seed: int, alpha: float, k: int) -> dict[str, Any]:
    """The registry entry's hyperparameters for ``variant`` under ``cfg``."""
    anneal = {"initial_penalty": cfg.initial_penalty, "p_start": 1.0, "p_end": cfg.p_end,
              "anneal_start": int(cfg.anneal_start * cfg.steps), "anneal_end": cfg.steps - 1,
              "n_updates": cfg.n_p_updates, "sparsity_warmup": cfg.sparsity_warmup_steps}
    auxk = {"auxk_alpha": cfg.auxk_alpha, "k_aux": cfg.k_aux}
    return {"topk": {"k": k, **auxk}, "batchtopk": {"k": k, **auxk},
            "panneal": anneal,
            "structured": {**anneal, "alpha": alpha, "rank": cfg.rank, "seed": seed},
            "adapter": {**anneal, "alpha": alpha, "rank": cfg.rank, "seed": seed}}[variant]


TOPK_FAMILY = ("topk", "batchtopk")


def reference_training(cfg, variant: str) -> dict[str, Any]:
    """How ``variant`` starts and steps, as its reference trainer does: the top-k family's
    (dictionary_learning) start the pre-encoder bias at ``cfg.b_pre_init`` and clip the
    gradient norm at ``cfg.grad_clip``; the p-annealing family's do neither (mean, no clip)."""
    if variant in TOPK_FAMILY:
        return {"b_pre_init": cfg.b_pre_init, "grad_clip": cfg.grad_clip}
    return {"b_pre_init": "mean", "grad_clip": 0.0}


def calibration_sample(train, seed: int, n: int = 4096):
    """Training activations (model units) on which batch-top-k's inference threshold is set."""
    import torch

    return train.sample(torch.Generator().manual_seed(seed + 2), n)


@contextlib.contextmanager
def _calibrated(sae, calib_ND):
    """Evaluate batch-top-k with its calibrated threshold, then restore the training state."""
    import torch

    saved = sae.mechanism.threshold.clone()
    with torch.no_grad():
        xn_ND = calib_ND.to(sae.W_dec_FD.device) * sae.input_scale
        sae.mechanism.calibrate(sae.pre_activations(xn_ND))
    try:
        yield
    finally:
        sae.mechanism.threshold.copy_(saved)


def train_run(cfg, variant: str, seed: int, store, concepts: ConceptData, *,
              alpha: float | None = None, k: int | None = None, progress: bool = True) -> Run:
    """Train one SAE (or read it from the cache); checkpoints let a killed run resume.

    Under torchrun every process takes part in training (:func:`ipta.sae.train.train_sae`) and
    rank 0 evaluates and writes the entry, the same entry a single process would write."""
    from ipta.devices import pick_device
    from ipta.sae.model import SparseAutoencoder
    from ipta.sae.train import train_sae

    alpha = cfg.alpha if alpha is None else alpha
    k = cfg.k if k is None else k
    hp = mechanism_hparams(cfg, variant, seed, alpha, k)
    train = store.split(0, store.n_tokens - cfg.val_tokens)
    val_ND = store.split(store.n_tokens - cfg.val_tokens, store.n_tokens).all()
    spec = {"config": cfg.cache_spec(exclude=SWEEP_FIELDS), "activations": store.directory.name,
            "concepts": concept_spec(concepts),
            "variant": variant, "seed": seed, "alpha": alpha, "k": k, "hparams": hp}
    code = ("ipta.sae.runs",)
    ckpt = cache_root() / "sae_checkpoints" / entry_dir("sae_run", spec, code).name

    rank, world_size = distributed_world()
    calibrate = variant == "batchtopk" and cfg.batchtopk_threshold == "calibrated"
    calib_ND = calibration_sample(train, seed) if calibrate else None

    def evaluate(sae) -> dict[str, Any]:
        with _calibrated(sae, calib_ND) if calibrate else contextlib.nullcontext():
            return metrics.evaluate(sae, val_ND, concepts.reps_ND, concepts.logits_NK,
                                    cfg.pcc_threshold, concepts.heldout)

    def build(tmp: Path) -> None:
        device = pick_device(cfg.device)
        sae = SparseAutoencoder(store.d_model, cfg.n_features, variant, hp, seed=seed).to(device)
        history = train_sae(
            sae, train, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
            warmup_steps=cfg.warmup_steps, seed=seed, dead_after_tokens=cfg.dead_after_tokens,
            **reference_training(cfg, variant),
            evaluate=lambda s: _brief(evaluate(s)), eval_every=cfg.eval_every,
            checkpoint_dir=ckpt, checkpoint_every=cfg.checkpoint_every, progress=progress)
        if rank != 0:
            return
        final = evaluate(sae)
        if calibrate:  # the saved SAE infers as it was evaluated
            with _calibrated(sae, calib_ND):
                sae.save(tmp / "sae")
        else:
            sae.save(tmp / "sae")
        (tmp / "result.json").write_text(json.dumps({"history": history, "final": final}))

    fill = get_or_build_dir_collective if world_size > 1 else get_or_build_dir
    path = fill("sae_run", spec, build, code=code)
    if rank == 0:
        shutil.rmtree(ckpt, ignore_errors=True)
    saved = json.loads((path / "result.json").read_text())
    return Run(variant, seed, alpha, k, saved["history"], saved["final"], path)


def concept_spec(concepts: ConceptData) -> dict[str, Any]:
    """What a cache key holds of the concept data: every array the metric reads."""
    heldout = concepts.heldout
    return {"source": concepts.source, "reps": concepts.reps_ND, "logits": concepts.logits_NK,
            "heldout": None if heldout is None else {"logits": heldout.logits_NK,
                                                     "fit": heldout.fit_N,
                                                     "score": heldout.score_N}}


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    """An evaluation without the per-concept lists (kept only at the end)."""
    return {k: v for k, v in row.items() if not k.endswith("_K")}
