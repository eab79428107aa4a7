"""Specifications of ipta.latent.observe and ipta.latent.invertibility: the G.1 observation map
and its exact invertibility."""

import numpy as np
import pytest

from ipta.latent.dag import all_configs, joint_probs, make_dag
from ipta.latent.invertibility import (identified_share, latent_bayes_accuracy,
                                       masked_bit_diversity_rank,
                                       masked_latent_bayes_accuracy, posterior_concentration)
from ipta.latent.observe import random_observation_map


def test_each_observed_bit_is_a_bit_of_a_permuted_index():
    """Observed variable j is bit bits[j] of permutations[j][c]; every bit is balanced over configs."""
    obs = random_observation_map(3, 10, np.random.default_rng(0))
    code = obs.code_CM
    assert code.shape == (8, 10) and set(np.unique(code)) <= {0, 1}
    for j in range(10):
        assert (code[:, j] == (obs.permutations[j] >> obs.bits[j]) & 1).all()
        assert code[:, j].sum() == 4
    assert ((0 <= obs.bits) & (obs.bits < 3)).all()


def test_maps_with_more_variables_extend_those_with_fewer():
    """Drawn from the same generator state, the map with m variables is the prefix of m' > m."""
    small = random_observation_map(4, 5, np.random.default_rng(1)).code_CM
    large = random_observation_map(4, 12, np.random.default_rng(1)).code_CM
    assert (large[:, :5] == small).all()


def test_map_becomes_injective_when_m_is_large():
    """With m = 24 random bits the 8 chain configurations all get distinct codes (20 seeds)."""
    for seed in range(20):
        code = random_observation_map(3, 24, np.random.default_rng(seed)).code_CM
        assert len(np.unique(code, axis=0)) == 8


def test_two_bits_cannot_identify_eight_configurations():
    """m = 2 gives at most 4 codes for 8 configurations: the map cannot be inverted."""
    probs = joint_probs(make_dag("chain", 3, np.random.default_rng(2)))
    code = random_observation_map(3, 2, np.random.default_rng(3)).code_CM
    assert len(np.unique(code, axis=0)) <= 4
    assert identified_share(probs, code) < 1.0
    assert posterior_concentration(probs, code) < 1.0


def test_measures_are_one_for_an_injective_code():
    """Identity code (the binary index itself): identified share, concentration, Bayes accuracy = 1."""
    probs = joint_probs(make_dag("ER1", 4, np.random.default_rng(4)))
    configs = all_configs(4)
    assert identified_share(probs, configs) == pytest.approx(1.0)
    assert posterior_concentration(probs, configs) == pytest.approx(1.0)
    assert latent_bayes_accuracy(probs, configs, configs) == pytest.approx(np.ones(4))


def test_constant_code_gives_prior_mode_and_majority():
    """No observed variable: concentration = largest prior mass; latent accuracy = its majority."""
    probs = joint_probs(make_dag("chain", 3, np.random.default_rng(5)))
    configs = all_configs(3)
    empty = np.zeros((8, 0), dtype=np.uint8)
    assert posterior_concentration(probs, empty) == pytest.approx(probs.max())
    marg1 = configs.T.astype(float) @ probs
    assert latent_bayes_accuracy(probs, configs, empty) == pytest.approx(np.maximum(marg1, 1 - marg1))


def test_concentration_grows_with_more_observed_variables():
    """Adding variables (nested maps) never lowers the exact posterior concentration."""
    probs = joint_probs(make_dag("chain", 3, np.random.default_rng(6)))
    code = random_observation_map(3, 12, np.random.default_rng(7)).code_CM
    values = [posterior_concentration(probs, code[:, :m]) for m in range(13)]
    assert all(b >= a - 1e-12 for a, b in zip(values, values[1:]))


def test_masking_one_variable_never_helps():
    """The masked-input ceiling is at most the full-input ceiling, latent by latent."""
    probs = joint_probs(make_dag("ER2", 4, np.random.default_rng(8)))
    configs = all_configs(4)
    code = random_observation_map(4, 6, np.random.default_rng(9)).code_CM
    assert (masked_latent_bayes_accuracy(probs, configs, code)
            <= latent_bayes_accuracy(probs, configs, code) + 1e-12).all()


def test_masked_bit_diversity_rank_is_at_most_the_number_of_positions():
    """One row per position: m bits of 8 configurations give rank <= m, and 8 needs m >= 8."""
    rng = np.random.default_rng(0)
    for m in (3, 6, 12):
        code = random_observation_map(3, m, rng).code_CM
        assert masked_bit_diversity_rank(code) <= min(m, 8)
    assert masked_bit_diversity_rank(np.eye(8, dtype=int)) == 8
