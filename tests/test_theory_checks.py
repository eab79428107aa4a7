"""Specification of ipta.theory.checks: the Theorem 3.1 and corollary checks."""

import numpy as np
import pytest

from ipta.theory.checks import (affine_fit_scores, concept_pairs, context_residuals,
                                effective_sample_size, mean_abs_cosine_of_random_directions, features_XZ, fit_affine, pair_cosines,
                                rank_and_condition, token_diversity_matrix)
from ipta.theory.config import Config as TheoryConfig
from ipta.latent.model import enumerate_model, make_model


def test_affine_fit_is_exact_for_an_affine_target():
    """R^2 = 1 and zero relative error when f is exactly A u + b, on held-out rows."""
    rng = np.random.default_rng(0)
    u = rng.normal(size=(200, 5))
    f = u @ rng.normal(size=(5, 3)) + rng.normal(size=3)
    scores = affine_fit_scores(f, u, rng.random(200), rng.random(200) < 0.5)
    assert scores["r2"] == pytest.approx(1, abs=1e-10)
    assert scores["rel_err"] < 1e-10


def test_the_uniform_weighting_is_ordinary_least_squares():
    """Equal weights give the OLS fit with an intercept, whatever their common value."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(2)
    u, f = rng.normal(size=(50, 4)), rng.normal(size=(50, 3))
    A, b = fit_affine(f, u, np.full(50, 7.0))
    ols = LinearRegression().fit(u, f)
    np.testing.assert_allclose(A, ols.coef_, atol=1e-12)
    np.testing.assert_allclose(b, ols.intercept_, atol=1e-12)


def test_whitened_r2_is_invariant_to_linear_maps_of_f_and_summed_r2_is_not():
    """At the optimum f is fixed only up to an invertible linear map: the whitened score is
    the same for f and f M; the summed R^2 of the outputs changes when M is not orthogonal."""
    rng = np.random.default_rng(3)
    u = rng.normal(size=(300, 4))
    f = np.tanh(u @ rng.normal(size=(4, 3))) + 0.3 * rng.normal(size=(300, 3))
    w, test = rng.random(300), rng.random(300) < 0.5
    M = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 0.01]]) @ rng.normal(size=(3, 3))
    before, after = affine_fit_scores(f, u, w, test), affine_fit_scores(f @ M, u, w, test)
    assert after["r2_white"] == pytest.approx(before["r2_white"], abs=1e-10)
    assert abs(after["r2"] - before["r2"]) > 0.01


def test_effective_sample_size_counts_equal_weights_and_one_heavy_weight_as_one():
    assert effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert effective_sample_size(np.r_[1.0, np.full(9, 1e-9)]) == pytest.approx(1, abs=1e-6)


def test_context_residuals_vanish_for_an_affine_target_and_not_for_noise():
    rng = np.random.default_rng(4)
    u = rng.normal(size=(40, 3))
    assert context_residuals(u @ rng.normal(size=(3, 2)) + 1, u).max() < 1e-10
    assert context_residuals(rng.normal(size=(40, 2)), u).mean() > 0.5


def test_affine_fit_of_unrelated_noise_scores_near_or_below_zero():
    rng = np.random.default_rng(1)
    scores = affine_fit_scores(rng.normal(size=(400, 3)), rng.normal(size=(400, 4)),
                               np.ones(400), rng.random(400) < 0.5)
    assert scores["r2"] < 0.05


def test_token_diversity_holds_with_an_extra_token_and_fails_without():
    """The |Z| x |Z| diversity matrix needs |Y| >= |Z| + 1 tokens."""
    lik = enumerate_model(make_model(TheoryConfig(), 0, 0.1, 0.2)).lik_ZY
    assert rank_and_condition(token_diversity_matrix(lik), 8)[0] == 8
    one_token_less = lik[:, :-1] / lik[:, :-1].sum(1, keepdims=True)
    assert rank_and_condition(token_diversity_matrix(one_token_less), 8)[0] == 7


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


@pytest.mark.parametrize("dim", [2, 8, 30])
def test_chance_cosine_matches_sampled_random_directions(dim):
    """The closed form against 100k sampled pairs (standard error about 0.001)."""
    v = np.random.default_rng(dim).normal(size=(100_000, 2, dim))
    v /= np.linalg.norm(v, axis=2, keepdims=True)
    sampled = np.abs((v[:, 0] * v[:, 1]).sum(1)).mean()
    assert mean_abs_cosine_of_random_directions(dim) == pytest.approx(sampled, abs=0.005)
