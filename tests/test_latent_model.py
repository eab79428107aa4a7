"""Specification of ipta.latent.model: the exact enumeration of the paper's latent variable model."""

import itertools

import networkx as nx
import numpy as np
import pytest

from ipta.theory.checks import context_diversity_matrix, rank_and_condition, token_diversity_matrix

from ipta.config import ConfigError
from ipta.latent.dag import all_configs
from ipta.latent.invertibility import invertibility_error_X
from ipta.theory.config import Config as TheoryConfig
from ipta.latent.model import (ModelSpec, enumerate_model, exact_logit_ratios_XR,
                               log_context_likelihood_XZ, log_prior_Z, make_model, sample,
                               token_likelihood_ZY)

SMALL = TheoryConfig(n_concepts=3, context_bits=7, n_graphs=1)


@pytest.fixture(params=[("er", 0.2, 0.3), ("chain", 0.05, 0.02)])
def model(request):
    graph, c_noise, t_noise = request.param
    extra = {"edges_per_node": 1.0} if graph == "er" else {}
    cfg = SMALL.replace(graph=graph, **extra)
    return make_model(cfg, 7, c_noise, t_noise)


def test_latent_graph_is_a_dag_and_cpts_lie_in_the_papers_range(model):
    assert nx.is_directed_acyclic_graph(model.graph)
    for k, th in enumerate(model.dag.tables):
        assert th.shape == (2 ** model.graph.in_degree(k),)
        assert np.all((th >= 0.2) & (th <= 0.8))


def test_distributions_sum_to_one(model):
    e = enumerate_model(model)
    assert e.p_Z.sum() == pytest.approx(1, abs=1e-12)
    assert e.p_X.sum() == pytest.approx(1, abs=1e-12)
    np.testing.assert_allclose(e.post_XZ.sum(1), 1, atol=1e-12)
    np.testing.assert_allclose(e.lik_ZY.sum(1), 1, atol=1e-12)
    np.testing.assert_allclose(e.pred_XY.sum(1), 1, atol=1e-12)


def test_prior_matches_the_dag_factorisation_by_brute_force(model):
    """p(z) from a plain loop over configurations and nodes equals the vectorised one."""
    logp = log_prior_Z(model)
    for zi, z in enumerate(all_configs(model.n_concepts)):
        total = 0.0
        for k in range(model.n_concepts):
            parents = sorted(model.graph.predecessors(k))
            j = sum(int(z[p]) << i for i, p in enumerate(parents))
            p1 = model.dag.tables[k][j]
            total += np.log(p1 if z[k] else 1 - p1)
        assert logp[zi] == pytest.approx(total, abs=1e-12)


def test_posterior_matches_bayes_rule_by_brute_force(model):
    """p(z|x) = p(x|z) p(z) / sum_z' p(x|z') p(z'), with p(x|z) from bit-by-bit flips."""
    e = enumerate_model(model)
    eta = model.context_noise
    for xi, x in enumerate(all_configs(model.code_ZM.shape[1])):
        joint = np.array([np.prod([eta if xb != cb else 1 - eta for xb, cb in zip(x, code)])
                          * e.p_Z[zi] for zi, code in enumerate(model.code_ZM)])
        np.testing.assert_allclose(e.post_XZ[xi], joint / joint.sum(), rtol=1e-10)
        assert e.p_X[xi] == pytest.approx(joint.sum(), rel=1e-10)


def test_next_token_is_independent_of_context_given_latents(model):
    """Building p(x, y, z) from the model and conditioning on z leaves I(X; Y | Z) = 0, and
    p(y|x) equals the marginal sum_z p(z|x) p(y|z) computed from that joint."""
    e = enumerate_model(model)
    lik_XZ = np.exp(log_context_likelihood_XZ(model))
    joint_XYZ = lik_XZ[:, None, :] * token_likelihood_ZY(model).T[None] * e.p_Z[None, None]
    p_xz = joint_XYZ.sum(1, keepdims=True)
    p_yz = joint_XYZ.sum(0, keepdims=True)
    p_z = joint_XYZ.sum((0, 1), keepdims=True)
    cmi = (joint_XYZ * np.log(joint_XYZ * p_z / (p_xz * p_yz))).sum()
    assert abs(cmi) < 1e-12
    pred = joint_XYZ.sum(2) / joint_XYZ.sum((1, 2))[:, None]
    np.testing.assert_allclose(pred, e.pred_XY, rtol=1e-10)


def test_enumeration_matches_monte_carlo_frequencies(model):
    """Ancestral samples reproduce p(z) and p(y|z) within 5 binomial standard errors."""
    e = enumerate_model(model)
    z, x, y = sample(model, 200_000, np.random.default_rng(0))
    freq_z = np.bincount(z, minlength=len(e.p_Z)) / len(z)
    se = np.sqrt(e.p_Z * (1 - e.p_Z) / len(z))
    assert np.all(np.abs(freq_z - e.p_Z) < 5 * se + 1e-9)
    freq_x = np.bincount(x, minlength=len(e.p_X)) / len(x)
    assert np.all(np.abs(freq_x - e.p_X) < 5 * np.sqrt(e.p_X / len(x)) + 1e-4)
    top = np.argmax(e.p_Z)
    ys = y[z == top]
    freq_y = np.bincount(ys, minlength=e.lik_ZY.shape[1]) / len(ys)
    assert np.all(np.abs(freq_y - e.lik_ZY[top]) < 5 * np.sqrt(e.lik_ZY[top] / len(ys)) + 1e-4)


def test_invertibility_error_is_one_minus_the_posterior_mode(model):
    """Definition 2.1: eps(x) = 1 - max_z p(z|x), in [0, 1 - 1/|Z|], computed per context."""
    e = enumerate_model(model)
    eps = invertibility_error_X(e.post_XZ)
    for xi in range(len(eps)):
        mode = max(range(e.post_XZ.shape[1]), key=lambda z: e.post_XZ[xi, z])
        assert eps[xi] == pytest.approx(1 - e.post_XZ[xi, mode], abs=1e-15)
    assert np.all((eps >= 0) & (eps <= 1 - 1 / e.post_XZ.shape[1] + 1e-12))


def test_invertibility_error_falls_as_the_context_noise_falls():
    """The knob: the expected invertibility error shrinks monotonically with the flip rate."""
    cfg = TheoryConfig(context_bits=8)
    errors = []
    for noise in (0.45, 0.3, 0.1, 0.03, 0.01):
        e = enumerate_model(make_model(cfg, 0, noise, 0.1))
        errors.append(e.p_X @ invertibility_error_X(e.post_XZ))
    assert all(a > b for a, b in itertools.pairwise(errors))
    assert errors[0] > 0.5 and errors[-1] < 0.01


def test_same_graph_seed_gives_the_same_model_along_the_knob():
    a = make_model(SMALL, 3, 0.1, 0.1)
    b = make_model(SMALL, 3, 0.3, 0.5)
    assert list(a.graph.edges) == list(b.graph.edges)
    np.testing.assert_array_equal(a.code_ZM, b.code_ZM)
    for ta, tb in zip(a.dag.tables, b.dag.tables):
        np.testing.assert_array_equal(ta, tb)


def test_config_refuses_contexts_too_short_for_the_diversity_condition():
    """The context-side rank is at most M + 1, so K concepts need M >= 2^K - 1 bits."""
    with pytest.raises(ConfigError, match=r"'context_bits': 14 .* >= 2\^K - 1 = 15"):
        TheoryConfig(n_concepts=4, context_bits=14)
    assert TheoryConfig(n_concepts=4, context_bits=15).context_bits == 15


def test_config_refuses_a_vocabulary_too_small_for_the_diversity_condition():
    with pytest.raises(ConfigError, match="vocab_extra"):
        TheoryConfig(vocab_extra=0)


def test_the_paper_profile_meets_both_diversity_conditions():
    """Full rank |Z| = 16 on the token side and on the context side, for every setting kind."""
    cfg = TheoryConfig.for_profile("paper")
    for context_noise in (max(cfg.context_noise), min(cfg.context_noise)):
        e = enumerate_model(make_model(cfg, 0, context_noise, min(cfg.token_noise)))
        token_rank, _ = rank_and_condition(token_diversity_matrix(e.lik_ZY), 16)
        context_rank, _ = rank_and_condition(context_diversity_matrix(e.post_XZ, e.p_X), 16)
        assert (token_rank, context_rank) == (16, 16)


@pytest.mark.parametrize("profile", ["smoke", "classroom", "default", "paper"])
def test_every_profile_is_valid(profile):
    assert isinstance(TheoryConfig.for_profile(profile), TheoryConfig)


def test_the_exact_optimum_is_the_log_odds_against_the_last_token():
    pred = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    ratios = exact_logit_ratios_XR(pred)
    np.testing.assert_allclose(ratios, np.log(pred[:, :2] / pred[:, [2]]))


def test_tokens_a_noiseless_channel_never_emits_are_left_out_of_the_log_odds():
    pred = np.array([[0.2, 0.0, 0.8], [0.6, 0.0, 0.4]])
    np.testing.assert_allclose(exact_logit_ratios_XR(pred), np.log(pred[:, [0]] / pred[:, [2]]))


def test_an_additive_channel_adds_one_logit_vector_per_active_concept():
    """log p(y|z) - log p(y|z') for z, z' differing in concept k only is the same vector for
    every such pair (up to each row's normaliser): the channel is additive over concepts."""
    from ipta.latent.dag import all_configs

    model = make_model(ModelSpec(n_concepts=3), 0, 0.1, 0.0, channel="additive")
    log_ZY = np.log(token_likelihood_ZY(model))
    z_ZK = all_configs(3)
    for k in range(3):
        diffs = [log_ZY[a] - log_ZY[a - 2**k] for a in range(8) if z_ZK[a, k] == 1]
        centred = [d - d.mean() for d in diffs]
        for d in centred[1:]:
            np.testing.assert_allclose(d, centred[0], atol=1e-9)
