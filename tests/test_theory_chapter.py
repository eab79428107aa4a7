"""Specification of ipta.theory.chapter on one small sweep (smoke profile, one graph, two context
noises, 100 steps; a few seconds): what it describes, the tables' rows, the readings' groups of
settings, the figures' panels and the numbers glued for the prose."""

import numpy as np
import pytest

from ipta.theory import chapter
from ipta.theory.config import Config



@pytest.fixture
def res(theory_smoke):
    return theory_smoke


def test_the_sweep_has_a_row_per_token_noise_and_context_noise(res):
    """2 token noises (the default) x 2 context noises, one graph."""
    a = res.arrays
    assert len(a["eps"]) == 4
    assert sorted(zip(a["token_noise"], a["context_noise"])) == [
        (0.02, 0.02), (0.02, 0.3), (0.5, 0.02), (0.5, 0.3)]


def test_describe_gives_the_models_sizes_and_how_close_training_came(res):
    text = chapter.describe(res)
    assert text.startswith("|Z| = 8 configurations, |X| = 128 contexts, |Y| = 9 tokens, "
                           "width d = 8, 4 trained settings\n")
    assert f"max over settings {res.arrays['kl'].max():.1e}" in text


def test_the_r2_table_has_a_row_per_noise_pair_and_a_column_per_feature(res):
    table = chapter.table_r2(res)
    assert len(table) == 4 and table.index.names == ["token noise", "context noise"]
    assert set(chapter.FEATURE_LABELS.values()) <= set(table.columns)
    assert {"E[eps(x)]", "ESS of fitted half", "KL to optimum"} <= set(table.columns)
    assert len(chapter.table_r2(res, weighting="uniform")) == 4


def test_an_unknown_weighting_is_refused_naming_the_known_ones(res):
    with pytest.raises(ValueError, match=r"weighting 'log' is not one of \['p\(x\)', 'uniform'\]"):
        chapter.table_r2(res, weighting="log")


def test_the_quarters_and_extremes_pick_settings_by_their_invertibility_error(res):
    eps = res.arrays["eps"]
    quarters = chapter.invertibility_quarters(res)
    least, most = quarters["least invertible quarter"], quarters["most invertible quarter"]
    assert least.sum() == most.sum() == 1 and not (least & most).any()
    assert eps[least].item() == eps.max() and eps[most].item() == eps.min()
    extremes = chapter.extreme_settings(res)  # eps ties across token noises: compare values
    least_row, most_row = extremes.values()
    assert eps[least_row] == eps.max() and eps[most_row] == eps.min()
    assert list(extremes) == [f"eps = {eps.max():.3f}", f"eps = {eps.min():.4f}"]


def test_the_theorem_spearman_is_a_rank_correlation_per_weighting_and_token_noise(res):
    rho = chapter.theorem_spearman(res)
    assert set(rho) == {(w, t) for w in ("p(x)", "uniform") for t in (0.02, 0.5)}
    assert all(-1 <= r <= 1 for r in rho.values())


def test_the_readings_are_one_line_per_group(res):
    assert len(chapter.reading_diversity(res).splitlines()) == 2
    assert len(chapter.reading_probes(res).splitlines()) == 2
    quarters = chapter.invertibility_quarters(res)
    assert len(chapter.reading_cosines(res, quarters).splitlines()) == 2


def test_the_glued_numbers_are_plain_python_values(res):
    values = chapter.glue_numbers(res, Config.for_profile("smoke"))
    numbers = {k: v for k, v in values.items()
               if not hasattr(v, "_repr_markdown_") and not k.startswith("finding_")}
    assert all(type(v) in (int, float, bool) for v in numbers.values()), numbers
    assert all(isinstance(values[k], str) for k in ("finding_theorem", "finding_cor42",
                                                    "finding_cor43"))
    assert values["n_configs"] == 8 and values["context_bits"] == 7
    assert values["kl_max"] == pytest.approx(res.arrays["kl"].max())
    assert str(values["trend_uni"].data) in ("falls", "rises")
    assert np.isfinite(values["chance_cos"])
