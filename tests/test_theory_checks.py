"""Specification of ipta.theory.checks: the Theorem 3.1 and corollary checks."""

import numpy as np
import pytest

from ipta.theory.checks import (affine_fit_scores, concept_pairs, features_XZ, pair_cosines,
                                  rank_and_condition, token_diversity_matrix)
from ipta.theory.chapter import Config as TheoryConfig
from ipta.theory.model import enumerate_model, make_model


def test_affine_fit_is_exact_for_an_affine_target():
    """R^2 = 1 and zero relative error when f is exactly A u + b, on held-out rows."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(200, 5))
    f = u @ rng.normal(size=(5, 3)) + rng.normal(size=3)
    scores = affine_fit_scores(f, u, rng.random(200), rng.random(200) < 0.5)
    assert scores["r2"] == pytest.approx(1, abs=1e-10)
    assert scores["rel_err"] < 1e-10


def test_affine_fit_of_unrelated_noise_scores_near_or_below_zero():
    rng = np.random.default_rng(1)
    scores = affine_fit_scores(rng.normal(size=(400, 3)), rng.normal(size=(400, 4)),
                               np.ones(400), rng.random(400) < 0.5)
    assert scores["r2"] < 0.05


def test_token_diversity_holds_with_an_extra_token_and_fails_without():
    """The |Z| x |Z| diversity matrix needs |Y| >= |Z| + 1 tokens."""
    for extra, expected in ((1, 8), (0, 7)):
        cfg = TheoryConfig(vocab_extra=extra)
        lik = enumerate_model(make_model(cfg, 0, 0.1, 0.2)).lik_ZY
        rank, _ = rank_and_condition(token_diversity_matrix(lik), 8)
        assert rank == expected


def test_mode_onehot_marks_the_posterior_argmax():
    post = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    np.testing.assert_array_equal(features_XZ(post, "mode_onehot"), [[0, 1, 0], [1, 0, 0]])


def test_concept_pairs_differ_in_exactly_that_concept():
    for k, pairs in enumerate(concept_pairs(3)):
        assert len(pairs) == 4
        assert all(a ^ b == 1 << k for a, b in pairs)


def test_parallel_differences_give_unit_same_concept_cosines():
    d = [np.outer([1.0, 2.0, 3.0], [1.0, 0.0]), np.outer([1.0, 0.5, 2.0], [0.0, 1.0])]
    same, cross = pair_cosines(d)
    np.testing.assert_allclose(same, 1)
    np.testing.assert_allclose(cross, 0, atol=1e-12)
