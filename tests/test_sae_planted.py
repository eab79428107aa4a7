"""Specification of ipta.sae.planted: a known dictionary, concepts that are known atoms, and what
the chapter's metric says about them."""

import numpy as np
import pytest
import torch

from ipta.sae import metrics, planted
from ipta.sae.controls import untrained_sae
from ipta.sae.config import Config as SAEConfig

SMALL = planted.Planted(d_model=32, n_atoms=64, n_concepts=8, pairs_per_concept=16,
                        n_tokens=6000)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("IPTA_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    cfg = planted.planted_config(SAEConfig.for_profile("smoke"), SMALL).replace(n_features=64)
    yield cfg, planted.planted_store(SMALL), planted.planted_concepts(cfg, SMALL)
    mp.undo()


def test_a_pair_differs_only_in_its_concepts_atom():
    data = planted.pair_words(SMALL)
    base, target = data.codes_NA[0::2], data.codes_NA[1::2]
    differ = base != target
    assert (differ.sum(1) == 1).all()
    assert (np.argmax(differ, 1) == data.concept_N[0::2]).all()
    assert (base[np.arange(len(base)), data.concept_N[0::2]] >= 1).all()
    np.testing.assert_allclose(data.reps_ND[0::2] - data.reps_ND[1::2],
                               (base - target) @ data.W_AD, atol=1e-5)


def test_the_store_holds_the_planted_tokens(bench):
    _, store, _ = bench
    assert (store.n_tokens, store.d_model) == (SMALL.n_tokens, SMALL.d_model)
    np.testing.assert_array_equal(store.rows(np.arange(5)), planted.tokens(SMALL)[:5])


def _codes(sae, x_ND):
    with torch.no_grad():
        return sae.encode(torch.as_tensor(x_ND)).numpy()


@pytest.mark.parametrize("reading", ["raw", "spearman", "exp_std"])
def test_the_true_codes_outrank_an_untrained_copy_of_their_sparsity_in_scale_free_readings(
        bench, reading):
    """The metric sees a dictionary that found the concepts: the true codes score above the
    untrained top-k SAE (the same sparsity: k = the true mean number of active atoms) in every
    reading that a rescaling cannot move."""
    cfg, store, concepts = bench
    truth = planted.pair_words(SMALL).codes_NA
    key = f"mean_pcc_{reading}"
    perfect = metrics.score_codes(truth, concepts.logits_NK, 0.5, concepts.heldout)[key]
    for seed in (0, 1):
        codes = _codes(untrained_sae(cfg, "topk", seed, store), concepts.reps_ND)
        untrained = metrics.score_codes(codes, concepts.logits_NK, 0.5, concepts.heldout)[key]
        assert perfect > untrained + 0.05, (reading, seed, perfect, untrained)


def test_rescaling_the_true_codes_moves_only_the_papers_reading(bench):
    _, _, concepts = bench
    truth = planted.pair_words(SMALL).codes_NA
    small, large = (metrics.score_codes(planted.rescaled(truth, s), concepts.logits_NK)
                    for s in (0.25, 8.0))
    assert small["mean_pcc"] > large["mean_pcc"] + 0.1
    for key in ("mean_pcc_raw", "mean_pcc_spearman", "mean_pcc_exp_std"):
        assert small[key] == pytest.approx(large[key], abs=1e-9)


def test_densifying_keeps_every_active_code_and_fills_zeros_with_smaller_values():
    truth = planted.pair_words(SMALL).codes_NA
    dense = planted.densified(truth, 1.0)
    active = truth > 0
    np.testing.assert_array_equal(dense[active], truth[active])
    assert (dense > 0).all() and dense[~active].max() < truth[active].min()
