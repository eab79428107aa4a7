"""Specification of ipta.probing.config: the LLM-probing chapter's parameters; a bad value is
refused naming the parameter, and every profile validates."""

import pytest

from ipta.config import ConfigError
from ipta.probing.config import Config as ProbingConfig


@pytest.mark.parametrize("bad,match", [({"template": "no slot"}, "template"),
                                       ({"concepts": ("verb-3pSg",)}, "at least two"),
                                       ({"concepts": ("nope", "verb-3pSg")}, "concepts"),
                                       ({"modes": ("fancy",)}, "modes")])
def test_config_refuses_bad_values_naming_the_parameter(bad, match):
    with pytest.raises(ConfigError, match=match):
        ProbingConfig.for_profile("default", **bad)


def test_profiles_validate():
    for profile in ("smoke", "classroom", "default", "paper"):
        ProbingConfig.for_profile(profile)
