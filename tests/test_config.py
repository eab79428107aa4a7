"""Config dataclasses: values from profiles, dicts and CLI strings are validated on creation."""

from dataclasses import FrozenInstanceError, dataclass
from typing import Literal

import pytest

from ipta.config import Config, ConfigError, param


@dataclass(frozen=True)
class Toy(Config):
    steps: int = param(100, "training steps", low=1)
    lr: float = param(1e-3, "learning rate", low=0.0, high=1.0)
    mode: Literal["paper", "rigorous"] = param("paper", "which protocol")
    sizes: tuple[int, ...] = param((4, 5), "latent sizes", low=1, high=12)
    name: str = param("chain", "graph kind", choices=("chain", "er1"))
    verbose: bool = param(False, "print more")
    layer: int | None = param(None, "layer, None for the last")

    PROFILES = {"smoke": {"steps": 2, "sizes": (4,)}, "paper": {"steps": 20000}}


def test_strings_from_the_command_line_are_converted_to_the_declared_types():
    cfg = Toy.for_profile("default", steps="7", lr="0.5", sizes="4,6", verbose="true", layer="3")
    assert (cfg.steps, cfg.lr, cfg.sizes, cfg.verbose, cfg.layer) == (7, 0.5, (4, 6), True, 3)


def test_lists_may_be_given_as_json():
    assert Toy.for_profile("default", sizes="[5, 7]").sizes == (5, 7)


def test_none_is_accepted_for_optional_fields():
    assert Toy.for_profile("default", layer="none").layer is None


def test_profile_overrides_apply_on_top_of_the_defaults_and_user_overrides_win():
    assert Toy.for_profile("smoke").steps == 2
    assert Toy.for_profile("smoke").lr == 1e-3
    assert Toy.for_profile("smoke", steps=3).steps == 3
    assert Toy.for_profile("paper").steps == 20000


@pytest.mark.parametrize("overrides, fragments", [
    ({"steps": "0"}, ["'steps'", ">= 1"]),
    ({"lr": "2"}, ["'lr'", "<= 1.0"]),
    ({"steps": "many"}, ["'steps'", "not an int"]),
    ({"mode": "fast"}, ["'mode'", "'paper'", "'rigorous'"]),
    ({"name": "er9"}, ["'name'", "'chain'", "'er1'"]),
    ({"sizes": "4,13"}, ["'sizes'", "13", "<= 12"]),
    ({"verbose": "maybe"}, ["'verbose'", "true or false"]),
    ({"stepz": 3}, ["unknown parameter 'stepz'", "steps", "lr", "mode"]),
])
def test_a_bad_value_is_refused_with_a_message_naming_the_parameter_and_what_it_allows(overrides, fragments):
    with pytest.raises(ConfigError) as err:
        Toy.for_profile("default", **overrides)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_an_unknown_profile_is_refused_with_the_allowed_ones():
    with pytest.raises(ConfigError, match="smoke, classroom, default, paper"):
        Toy.for_profile("huge")


def test_configs_are_frozen():
    with pytest.raises(FrozenInstanceError):
        Toy().steps = 3


def test_to_dict_round_trips_through_from_dict():
    cfg = Toy.for_profile("smoke", mode="rigorous")
    assert Toy.from_dict(cfg.to_dict()) == cfg


def test_describe_lists_every_field_with_its_doc():
    rows = {name: (allowed, doc) for name, _, allowed, doc in Toy.describe()}
    assert set(rows) == set(Toy.field_names())
    assert rows["steps"] == ("int >= 1", "training steps")
