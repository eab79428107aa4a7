"""Specification of ipta.sae.config: the SAE chapter's parameters; sizes that cannot train
together, and variants that are not registered, are refused naming the parameters."""

import pytest

from ipta.config import PROFILES, ConfigError
from ipta.sae.config import READINGS, VARIANTS, Config


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_validates_and_trains_the_four_variants(profile, monkeypatch):
    monkeypatch.delenv("IPTA_WORD_PAIRS_DIR", raising=False)
    assert Config.for_profile(profile, concept_source="embedded").variants == VARIANTS


def test_the_sae_chapter_refuses_validation_rows_that_leave_less_than_a_batch():
    with pytest.raises(ConfigError, match=r"'n_tokens' \(3000\) and 'val_tokens' \(2999\) leave "
                                          r"1 training rows, fewer than one batch"):
        Config.for_profile("smoke", val_tokens=2999)


@pytest.mark.parametrize("overrides,message", [
    ({"k": 129}, r"'k' \(129\) exceeds 'n_features' \(128\)"),
    ({"warmup_steps": 40}, r"'warmup_steps' \(40\) must be below 'steps' \(40\)"),
    ({"rank": 65}, r"'rank' \(65\) exceeds min\(batch_size, n_features\)"),
    ({"eval_every": 41}, r"'eval_every' \(41\) exceeds 'steps' \(40\)"),
    ({"n_p_updates": 41}, r"'n_p_updates' \(41\) exceeds 'steps' \(40\)"),
    ({"checkpoint_every": 10**12}, r"'checkpoint_every' \(1000000000000\) exceeds 'steps' \(40\)"),
])
def test_sizes_that_cannot_train_together_are_refused_naming_both(overrides, message):
    with pytest.raises(ConfigError, match=message):
        Config.for_profile("smoke", concept_source="embedded", **overrides)


def test_a_variant_that_is_not_registered_is_refused_listing_the_registered_ones():
    with pytest.raises(ConfigError, match=r"'variants': .*'relu' is not a registered SAE "
                                          r"variant; choose from .*topk.*batchtopk"):
        Config.for_profile("smoke", concept_source="embedded", variants=("topk", "relu"))


def test_both_readings_of_the_structured_sae_are_variants_too():
    cfg = Config.for_profile("smoke", concept_source="embedded", variants=READINGS)
    assert cfg.variants == ("structured", "adapter")
