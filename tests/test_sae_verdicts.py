"""Specification of ipta.sae.verdicts: every variant against every control in every reading, a
test that holds its level on null comparisons and finds a planted effect."""

import numpy as np
import pytest
import torch

from ipta import stats
from ipta.sae import metrics, planted, runs, verdicts
from ipta.sae.config import Config as SAEConfig
from ipta.sae.controls import untrained_sae

SMALL = planted.Planted(d_model=32, n_atoms=64, n_concepts=10, pairs_per_concept=16,
                        n_tokens=8000)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("IPTA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    base = SAEConfig.for_profile("smoke", seeds=(0, 1, 2), variants=("topk", "panneal"),
                                 n_boot=400, null_seeds=12, planted_steps=300)
    cfg = planted.planted_config(base, SMALL).replace(n_features=64)
    yield cfg, planted.planted_store(SMALL), planted.planted_concepts(cfg, SMALL)
    mp.undo()


def test_matched_random_features_keep_each_features_values_in_a_random_order():
    rng = np.random.default_rng(0)
    target = np.maximum(rng.standard_normal((50, 6)), 0) * np.arange(1, 7)
    random = rng.standard_normal((50, 6))
    matched = verdicts.quantile_match(random, target)
    np.testing.assert_array_equal(np.sort(matched, 0), np.sort(target, 0))
    for j in range(6):  # larger random value, larger (or equal) matched value
        order = np.argsort(random[:, j])
        assert (np.diff(matched[order, j]) >= 0).all()


def _codes(sae, x_ND):
    with torch.no_grad():
        return sae.encode(torch.as_tensor(x_ND)).numpy()


def test_a_systems_observed_scores_are_the_metrics_in_every_reading(bench):
    cfg, store, concepts = bench
    codes = _codes(untrained_sae(cfg, "panneal", 0, store), concepts.reps_ND)
    scores = verdicts.system_scores(codes, concepts, verdicts.resamplers(concepts, 3, 100))
    direct = metrics.score_codes(codes, concepts.logits_NK, 0.5, concepts.heldout)
    for reading, key in verdicts.READINGS.items():
        assert scores[reading].observed_K.mean() == pytest.approx(direct[key], abs=1e-9)
        assert scores[reading].boot_BK.shape == (100, len(concepts.names))


def test_systems_scored_over_worker_processes_are_the_systems_scored_here(bench, monkeypatch):
    """Every system the verdicts compare (untrained copies and random features here), scored by
    two workers, equals the one-process scores: same keys, same observed and bootstrap values,
    bit for bit (the bootstrap's float32 product runs on one thread in both)."""
    import ipta.parallel

    cfg, store, concepts = bench
    cfg = cfg.replace(null_seeds=3)
    draws = verdicts.resamplers(concepts, 3, 50)
    out = {}
    for n in (1, 2):
        monkeypatch.setattr(ipta.parallel, "cores", lambda n=n: n)
        out[n] = verdicts._systems(cfg, store, concepts, [], draws)
    assert list(out[1]) == list(out[2]) and len(out[1]) == 3 + 3  # random_topk only: no runs
    for key, readings in out[1].items():
        for reading, s in readings.items():
            np.testing.assert_array_equal(out[2][key][reading].observed_K, s.observed_K)
            np.testing.assert_array_equal(out[2][key][reading].boot_BK, s.boot_BK)


def test_the_test_holds_its_level_on_null_comparisons(bench):
    """Untrained copies of 12 seeds never trained, in four groups of three, compared group
    against group (6 pairs x 5 readings x 2 variants) and random features likewise: 90 null
    comparisons. Tolerance: a false-positive share at most 0.10 at the 5% level, two binomial
    standard deviations (0.023 each) above the nominal 0.05."""
    cfg, store, concepts = bench
    draws = verdicts.resamplers(concepts, 3, cfg.n_boot)
    systems = {}
    for seed in verdicts.null_seeds(cfg):
        for variant in cfg.variants:
            codes = _codes(untrained_sae(cfg, variant, seed, store), concepts.reps_ND)
            systems["untrained", variant, seed] = verdicts.system_scores(codes, concepts, draws)
    seeds = verdicts.null_seeds(cfg)
    groups = [seeds[i:i + 3] for i in range(0, len(seeds), 3)]
    p = [verdicts._comparison(systems, draws, ("untrained", v, a), ("untrained", v, b), r,
                              paired=True).p
         for i, a in enumerate(groups) for b in groups[i + 1:]
         for r in verdicts.READINGS for v in cfg.variants]
    share, _, _ = stats.false_positive_share(p)
    assert len(p) == 60 and share <= 0.10


@pytest.mark.slow
def test_the_verdicts_find_what_was_planted_and_nothing_in_the_nulls(bench):
    """Top-k trained on the planted tokens beats its untrained copy, after Holm's correction
    over the whole table, in the raw reading (this small benchmark's half-sized held-out
    split has too few pairs to promise the same there); the nulls stay under 10%."""
    cfg, store, concepts = bench
    main, _, _ = runs.train_all(cfg, store, concepts, progress=False)
    out = verdicts.compute(cfg, store, concepts, main)
    assert len(out["rows"]) == 2 * 3 * 5  # no structured run here: no head-to-head rows
    beats = {(r["variant"], r["against"], r["reading"]): r["beats"] for r in out["rows"]}
    assert beats["topk", "untrained", "raw"]
    assert out["null_share"] <= 0.10
    assert out["power"]["detectable"] > 0 and set(out["matched"]) == {"topk", "panneal"}
