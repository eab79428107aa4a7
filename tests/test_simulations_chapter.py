"""Specification of ipta.simulations.chapter on one small sweep (two chain sizes, one ER kind at
two sizes, two seeds, 20 steps; a few seconds) and on runs written by hand: what it describes,
the tables' rows, the gain's pairing run by run, the figures' panels and the glued verdicts."""

import numpy as np
import pandas as pd
import pytest

from ipta.simulations import chapter
from ipta.simulations.config import Config
from conftest import SIMULATIONS_SMOKE
from ipta.stats import HELPS, Difference

CFG = Config.for_profile("smoke", **SIMULATIONS_SMOKE)


@pytest.fixture
def res(simulations_smoke):
    return simulations_smoke


def test_describe_counts_the_runs_settings_seeds_and_steps(res):
    assert chapter.describe(res) == "8 runs: 4 settings x 2 seeds, 20 steps each"
    assert res.loss_ST.shape == (8, 20)


def test_the_summary_has_a_row_per_setting_with_mean_and_spread_over_seeds(res):
    table = chapter.table_summary(res)
    assert len(table) == 4
    assert {"trained_mean", "trained_std", "untrained_mean", "raw_mean",
            "posterior_concentration", "bayes_masked"} <= set(table.columns)
    left6 = res.runs[(res.runs.panel == "left") & (res.runs.n_observed == 6)]
    row = table[(table.panel == "left") & (table.n_observed == 6)].iloc[0]
    assert row.trained_mean == pytest.approx(left6.trained.mean())


def test_the_per_panel_tables_have_a_row_per_panel_and_size(res):
    for table in (chapter.table_controls(res), chapter.table_layers(res)):
        assert list(table.index) == [("left", "m = 2"), ("left", "m = 6"),
                                     ("right", "K = 4"), ("right", "K = 5")]
        assert all(" ± " in cell for cell in table.to_numpy().ravel())
    assert len(chapter.table_layers(res).columns) == 2 * chapter.n_layers(res.runs) == 2 * CFG.n_layers
    assert list(chapter.table_gaps(res).index) == [("left", "chain"), ("right", "ER1")]
    assert list(chapter.table_excess_loss(res).index) == [("left", 3), ("right", 4),
                                                          ("right", 5)]


def test_the_diversity_table_needs_rank_two_to_the_k(res):
    table = chapter.table_diversity(res)
    assert list(table["|Z| needed"]) == [8, 8, 16, 32]
    assert list(table["meets it"]) == ["yes" if r >= z else "no"
                                       for r, z in zip(table["rank"], table["|Z| needed"])]


def test_the_readings_quote_a_correlation_and_both_panels(res):
    text = chapter.reading_summary(res)
    assert text.count("\n- ") == 2 and f"{chapter.left_correlation(res):.2f}" in text


def test_the_gain_pairs_each_runs_trained_and_untrained_accuracy_within_a_panel():
    """Every run is its own problem and initialisation, trained and untrained from the same
    start: the gain is taken run by run, over the panel's runs only."""
    runs = pd.DataFrame({"panel": ["left"] * 4 + ["right"], "seed": [0, 0, 1, 1, 0],
                         "trained": [0.6, 0.8, 0.5, 0.7, 0.9],
                         "untrained": [0.5, 0.5, 0.5, 0.5, 0.1]})
    gain = chapter.run_gain(chapter.Result(runs, np.zeros((5, 1))), "left", "trained",
                            "untrained")
    assert gain.n == 4 and gain.mean == pytest.approx(0.15)
    assert gain.se == pytest.approx(Difference.of([0.1, 0.3, 0.0, 0.2]).se)


def test_the_glued_numbers_hold_a_verdict_per_panel_and_reading(res):
    """Four runs per panel: too few for the sign-flip test to ever reach 5%, whatever the
    gains."""
    values = chapter.glue_numbers(res, CFG)
    assert values["n_seeds"] == 2 and values["n_layers"] == CFG.n_layers
    for tag in ("left_pooled", "right_per_position", "left_first", "right_last"):
        assert isinstance(values[f"gain_{tag}"], float)
        assert str(values[f"verdict_{tag}"].data) == HELPS(None)


def test_the_accuracy_table_shows_each_accuracy_as_mean_and_sd_under_short_headers(res):
    summary, page = chapter.table_summary(res), chapter.table_accuracy(res)
    assert len(page) == len(summary) and len(page.columns) == 10
    row = page[(page.panel == "left") & (page.observed == 6)].iloc[0]
    left6 = summary[(summary.panel == "left") & (summary.n_observed == 6)].iloc[0]
    assert row.trained == f"{left6.trained_mean:.3g} ± {left6.trained_std:.3g}"
