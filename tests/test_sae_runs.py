"""Specification of ipta.sae.runs: the concept data of appendix H.2 and what a run's key holds."""

import pytest

from ipta.lm import models
from ipta.lm.models import LazyModel
from ipta.sae import runs
from ipta.sae.config import Config as SAEConfig

SMOKE = dict(model="tiny:llama", concept_source="embedded", n_tokens=600, val_tokens=128,
             max_pairs_per_concept=3)


@pytest.fixture
def load_count(tmp_path, monkeypatch):
    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path))
    calls = []
    real = models.load_model

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "load_model", counting)
    return calls


def test_extraction_and_word_representations_share_one_model_load(load_count):
    cfg = SAEConfig.for_profile("smoke", **SMOKE)
    model = LazyModel(cfg.model)
    store = runs.activations(cfg, progress=False, loaded=model)
    data = runs.concept_data(cfg, progress=False, loaded=model)
    assert len(load_count) == 1
    assert store.n_tokens == cfg.n_tokens and store.d_model == data.reps_ND.shape[1]
    warm = LazyModel(cfg.model)
    runs.activations(cfg, progress=False, loaded=warm)
    runs.concept_data(cfg, progress=False, loaded=warm)
    assert len(load_count) == 1 and not warm.is_loaded  # a warm cache loads nothing


def test_concept_logits_are_each_probes_logits_on_every_word(load_count):
    """Column k of logits_NK is positive on most of concept k's base words and negative on its
    targets (the probes are fitted on exactly those rows)."""
    cfg = SAEConfig.for_profile("smoke", **SMOKE)
    data = runs.concept_data(cfg, progress=False)
    assert data.logits_NK.shape == (len(data.reps_ND), len(data.names))
    for k in range(len(data.names)):
        rows = data.concept_N == k
        sign_ok = (data.logits_NK[rows, k] > 0) == (data.label_N[rows] == 1)
        assert sign_ok.mean() >= 0.5


def test_a_runs_key_ignores_the_sweep_axes_and_keeps_every_other_field():
    cfg = SAEConfig.for_profile("smoke")
    spec = cfg.cache_spec(exclude=runs.SWEEP_FIELDS)
    assert not set(runs.SWEEP_FIELDS) & set(spec)
    assert {"steps", "lr", "n_features", "pcc_threshold", "eval_every"} <= set(spec)
    assert "device" not in spec and "checkpoint_every" not in spec
