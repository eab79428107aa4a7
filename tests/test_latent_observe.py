"""Specification of ipta.latent.observe's pooled map, and of the one latent model that the theory
chapter and the simulations share: where their settings coincide, their numbers are identical."""

import numpy as np
import pytest

from ipta.latent.dag import config_index, joint_probs, sample_latents
from ipta.latent.invertibility import invertibility_error_X, posterior_concentration
from ipta.latent.observe import pooled_observation_map
from ipta.theory.config import Config as TheoryConfig
from ipta.latent.model import enumerate_model, make_model, sample


def test_pooled_map_keeps_distinct_balanced_bits_of_permuted_indices():
    obs = pooled_observation_map(3, 7, np.random.default_rng(0))
    code = obs.code_CM
    assert code.shape == (8, 7)
    assert (code.sum(0) == 4).all()  # a bit of a permutation of 8 items is 1 on exactly 4
    pairs = {(tuple(p), b) for p, b in zip(obs.permutations, obs.bits)}
    assert len(pairs) == 7  # drawn without replacement from the pool


@pytest.fixture(params=["chain", "er"])
def theory_model(request):
    cfg = TheoryConfig(n_concepts=3, context_bits=7, graph=request.param, n_graphs=1)
    return make_model(cfg, 2, 1e-9, 0.3)


def test_the_theory_prior_is_the_simulations_joint(theory_model):
    """Same DAG, same factors: p(z) of the theory (summed in log space) equals the simulations'
    product of conditionals to rounding."""
    np.testing.assert_allclose(enumerate_model(theory_model).p_Z, joint_probs(theory_model.dag),
                               rtol=1e-13, atol=0)


def test_the_theory_samples_latents_as_the_simulations_do(theory_model):
    z_N, _, _ = sample(theory_model, 500, np.random.default_rng(5))
    same = config_index(sample_latents(theory_model.dag, 500, np.random.default_rng(5)))
    np.testing.assert_array_equal(z_N, same)


def test_noise_free_contexts_concentrate_the_posterior_exactly_as_the_simulations_measure(
        theory_model):
    """With context noise -> 0, 1 - E[eps(x)] of the theory equals the simulations' exact
    posterior concentration of the same observation map (to 1e-6)."""
    e = enumerate_model(theory_model)
    theory = 1 - e.p_X @ invertibility_error_X(e.post_XZ)
    sims = posterior_concentration(joint_probs(theory_model.dag), theory_model.code_ZM)
    assert theory == pytest.approx(sims, abs=1e-6)
