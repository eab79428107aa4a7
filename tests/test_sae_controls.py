"""Specification of ipta.sae.controls: the chance levels and the ceiling of the concept metric."""

import numpy as np
import pytest
import torch

from ipta.sae import controls, runs
from ipta.sae.config import Config as SAEConfig
from ipta.sae.model import SparseAutoencoder
from ipta.sae.train import train_sae

TINY = dict(model="tiny:llama", concept_source="embedded", n_tokens=600, val_tokens=128,
            max_pairs_per_concept=3, n_features=64, k=4)


@pytest.fixture
def setting(tmp_path, monkeypatch):
    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path))
    cfg = SAEConfig.for_profile("smoke", **TINY)
    return cfg, runs.activations(cfg, progress=False), runs.concept_data(cfg, progress=False)


def test_the_untrained_control_is_where_training_starts(setting):
    """Same weights, normalisation and buffers as an SAE handed to train_sae for zero steps."""
    cfg, store, _ = setting
    for variant in ("topk", "panneal"):
        control = controls.untrained_sae(cfg, variant, 1, store)
        kind = runs.mechanism(variant)
        hp = kind.hparams_from(cfg, seed=1, alpha=cfg.alpha, k=cfg.k)
        start = SparseAutoencoder(store.d_model, cfg.n_features, variant, hp, seed=1)
        train_sae(start, store.split(0, store.n_tokens - cfg.val_tokens), steps=0,
                  batch_size=8, lr=1e-3, seed=1, **kind.training(cfg))
        for name, tensor in start.state_dict().items():
            torch.testing.assert_close(control.state_dict()[name], tensor, rtol=0, atol=0)


def test_an_untrained_batch_top_k_keeps_k_codes_per_token_on_training_activations(setting):
    """k per token on average, up to ties at the threshold (the store holds float16)."""
    cfg, store, _ = setting
    sae = controls.untrained_sae(cfg, "batchtopk", 0, store)
    train = store.split(0, store.n_tokens - cfg.val_tokens)
    with torch.no_grad():
        codes = sae.encode(runs.calibration_sample(train, 0))
    assert (codes != 0).sum(1).float().mean().item() == pytest.approx(cfg.k, abs=0.01)


def test_random_top_k_codes_keep_at_most_k_per_word():
    codes = controls.random_codes(np.random.default_rng(0).standard_normal((50, 8)), 32, 0,
                                  keep=5)
    assert ((codes != 0).sum(1) <= 5).all() and (codes >= 0).all()


def test_every_control_is_scored_for_every_seed_and_the_ceiling_is_perfect_by_rank(setting):
    cfg, store, concepts = setting
    out = controls.controls(cfg, store, concepts)
    kinds = [r.kind for r in out]
    assert kinds.count("untrained") == len(cfg.variants) * len(cfg.seeds)
    assert kinds.count("random") == kinds.count("random_topk") == len(cfg.seeds)
    assert kinds.count("model_dims") == kinds.count("ceiling") == 1
    ceiling = next(r for r in out if r.kind == "ceiling").final
    assert ceiling["mean_pcc_spearman"] == pytest.approx(1.0)
    assert ceiling["mean_pcc_raw"] == pytest.approx(1.0)


def test_the_controls_are_cached_and_read_back_equal_and_a_new_seed_recomputes(setting,
                                                                               monkeypatch):
    cfg, store, concepts = setting
    first = controls.controls(cfg, store, concepts)
    calls = []
    real = controls._compute
    monkeypatch.setattr(controls, "_compute", lambda *a: calls.append(a) or real(*a))
    again = controls.controls(cfg, store, concepts)
    assert calls == []  # read from the cache
    assert [(r.kind, r.variant, r.seed, r.k) for r in again] == [
        (r.kind, r.variant, r.seed, r.k) for r in first]
    for a, b in zip(first, again):
        np.testing.assert_equal(a.final, b.final)
    controls.controls(cfg.replace(seeds=(5,)), store, concepts)
    assert len(calls) == 1
    controls.controls(cfg.replace(alphas=(0.0, 0.5)), store, concepts)
    assert len(calls) == 1  # the alpha sweep does not change a control
