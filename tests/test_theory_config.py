"""Specification of ipta.theory.config: the theory chapter's parameters, and the checks that
refuse a model the theorem's conditions cannot hold on before anything is computed."""

import pytest

from ipta.config import PROFILES, ConfigError
from ipta.theory.config import Config


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_validates(profile):
    cfg = Config.for_profile(profile)
    assert cfg.context_bits >= 2**cfg.n_concepts - 1


def test_theorys_fitted_share_must_leave_more_contexts_than_coefficients():
    with pytest.raises(ConfigError, match=r"'test_fraction': 0.5 leaves about 4.0 of the 8 "
                                          r"contexts to fit 5 coefficients"):
        Config(n_concepts=2, context_bits=3, n_graphs=1)
    assert Config(n_concepts=2, context_bits=4, n_graphs=1).test_fraction == 0.5


@pytest.mark.parametrize("n_concepts,least", [(2, 3), (3, 7), (4, 15)])
def test_too_few_context_bits_for_the_diversity_condition_are_refused(n_concepts, least):
    """The context-side rank is at most context_bits + 1, and it must reach |Z| = 2^K."""
    with pytest.raises(ConfigError, match=rf"'context_bits': {least - 1} cannot satisfy the "
                                          rf"diversity condition .* >= 2\^K - 1 = {least}"):
        Config(n_concepts=n_concepts, context_bits=least - 1)
    assert Config(n_concepts=n_concepts, context_bits=max(least, 4)).context_bits >= least


def test_edges_per_node_is_refused_for_a_chain():
    with pytest.raises(ConfigError, match=r"'edges_per_node' only applies to graph='er'"):
        Config(graph="chain", edges_per_node=2.0)
    assert Config(graph="er", edges_per_node=2.0).edges_per_node == 2.0
