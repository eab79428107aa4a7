"""Specification of ipta.sae.long: the long setting is the default profile with LONG on top,
and its summary holds, per variant, the metric at each evaluation beside its controls."""

import json

import pytest

from ipta.config import ConfigError
from ipta.sae.config import Config
from ipta.sae.long import LONG, SERIES, load_long, long_config, summarise_long
from ipta.sae.runs import Run


def test_the_long_setting_is_the_default_profile_with_long_on_top():
    cfg = long_config()
    assert cfg == Config.for_profile("default", **LONG)
    assert all(getattr(cfg, name) == value for name, value in LONG.items())
    assert cfg.k == Config().k, "what LONG leaves alone is the default profile's"


def test_overrides_win_over_long_and_are_checked_like_any_parameter():
    assert long_config(steps=6000).steps == 6000
    with pytest.raises(ConfigError, match="'steps'"):
        long_config(steps=0)


def _evaluation(step, value):
    """A history row of an evaluation: every series of the summary at ``value``."""
    return {"step": step, **{key: value for key in SERIES}}


def test_the_summary_gives_each_variant_its_evaluations_in_tokens_and_its_controls(
        tmp_path):
    cfg = Config.for_profile("smoke", concept_source="embedded")
    training = {"step": 15, "train_loss": 1.0}  # a row without an evaluation: left out
    main = [Run("topk", 0, 0.0, 8, [_evaluation(10, 0.2), training, _evaluation(20, 0.3)], {},
                None),
            Run("panneal", 0, 0.0, 8, [_evaluation(10, 0.4)], {}, None)]
    untrained = {key: 0.15 for key in SERIES}
    controls = [Run("topk", 0, 0.0, 8, [], untrained, None, kind="untrained"),
                Run("panneal", 0, 0.0, 8, [], {"mean_pcc": 0.25}, None, kind="untrained"),
                Run("random_topk", 0, 0.0, 8, [], {"mean_pcc": 0.11}, None, kind="random_topk"),
                Run("random_topk", 1, 0.0, 8, [], {"mean_pcc": 0.99}, None, kind="random_topk")]
    summary = summarise_long(main, controls, cfg)
    assert summary["settings"] == cfg.to_dict()
    topk = summary["variants"]["topk"]
    assert topk["tokens"] == [10 * cfg.batch_size, 20 * cfg.batch_size]
    assert all(topk[key] == [0.2, 0.3] for key in SERIES)
    assert topk["untrained"] == untrained
    panneal = summary["variants"]["panneal"]
    assert panneal["untrained"]["mean_pcc"] == 0.25 and panneal["untrained"]["val_l0"] is None
    assert panneal["random_topk"]["mean_pcc"] == 0.11, "the first seed's random features"
    (tmp_path / "sae_long.json").write_text(json.dumps(summary))  # as `ipta sae-long` does
    assert load_long(tmp_path / "sae_long.json") == summary


def test_load_long_gives_none_for_a_missing_file_or_an_older_layout(tmp_path):
    assert load_long(tmp_path / "absent.json") is None
    (tmp_path / "old.json").write_text('{"variants": {}}')
    assert load_long(tmp_path / "old.json") is None


def test_the_long_numbers_give_margins_over_both_controls_and_the_l0_band():
    """Margins over the untrained copy (first and last) and over random features at top-k
    sparsity (last), and the L0 band after the first evaluation, from a made-up summary."""
    from ipta.sae.chapter import glue_long_numbers
    from ipta.sae.long import SERIES

    def series(values):
        return {key: list(values) for key in SERIES}

    run = {**series([0.5, 0.6, 0.55]), "val_l0": [90.0, 30.0, 34.0], "tokens": [1, 2, 3],
           "untrained": {key: 0.4 for key in SERIES}, "random_topk": {key: 0.7 for key in SERIES}}
    values = glue_long_numbers({"format": 2, "variants": {"panneal": run}})
    assert values["long_panneal_paper_first"] == pytest.approx(0.1)
    assert values["long_panneal_paper_last"] == pytest.approx(0.15)
    assert values["long_panneal_paper_drop"] == pytest.approx(0.05)
    assert values["long_panneal_raw_vs_random_last"] == pytest.approx(-0.15)
    assert (values["long_panneal_l0_low"], values["long_panneal_l0_high"]) == (30.0, 34.0)
    assert values["long_panneal_l0_first"] == 90.0
    assert str(values["long_paper_declines"].data) == "p-annealing"
