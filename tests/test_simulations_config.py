"""Specification of ipta.simulations.config: the simulations chapter's parameters."""

import pytest

from ipta.config import ConfigError
from ipta.simulations.config import Config as SimulationConfig


def test_profiles_build_and_bad_values_are_refused():
    """Every profile validates; an unknown graph kind and a reversed interval raise ConfigError."""
    for profile in ("smoke", "classroom", "default", "paper"):
        SimulationConfig.for_profile(profile)
    with pytest.raises(ConfigError, match="er_graphs"):
        SimulationConfig(er_graphs=("ER9",))
    with pytest.raises(ConfigError, match="table_low"):
        SimulationConfig(table_low=0.9, table_high=0.1)


def test_equal_ends_fix_the_bernoulli_parameters_and_reversed_ends_are_refused():
    """table_low == table_high is a fixed parameter; table_low > table_high names both ends."""
    assert SimulationConfig(table_low=0.5, table_high=0.5).table_low == 0.5
    with pytest.raises(ConfigError, match=r"'table_low': 0.6 exceeds table_high 0.4"):
        SimulationConfig(table_low=0.6, table_high=0.4)
