"""Specification of ipta.sae.tables on the hand-built Result of tests/test_sae_chapter.py: the
rows and columns of each table, blanks where a setting does not apply."""

import numpy as np
import pytest

from ipta.sae import tables
from ipta.sae.paper import PAPER_MEAN, PAPER_TABLE2, paper_name
from test_sae_chapter import NAMES, res  # noqa: F401 (the hand-built Result)


def test_the_summary_has_a_row_per_run_with_k_and_alpha_only_where_they_set_the_variant(res):  # noqa: F811
    table = tables.table_summary(res.main + res.ablation)
    assert len(table) == 6
    assert list(table.variant) == ["top-k"] * 2 + ["p-annealing"] * 2 + ["structured",
                                                                         "p-annealing"]
    assert list(table.k[:2]) == [8, 8] and table.k[2:].isna().all()
    assert table.alpha[4] == 0.1 and table.alpha.drop(index=4).isna().all()
    assert table["mean PCC"][0] == pytest.approx(np.mean([0.6, 0.4, 0.7]))
    assert table["held-out PCC"].isna().all(), "a metric the run lacks is NaN (a blank cell)"
    assert list(table.columns) == ["variant", "seed", "k", "alpha", "mean PCC", "coverage",
                                   "held-out PCC", "val MSE", "FVU", "L0", "dead"]


def test_table_2_puts_our_columns_beside_the_papers_with_its_mean_and_coverage_rows(res):  # noqa: F811
    table = tables.table_2(res)
    assert list(table.index) == [*NAMES, "mean PCC", "coverage@0.5 (3 rows)"]
    assert list(table.columns) == [
        "ours top-k", "paper top-k", "paper batch-top-k", "ours p-annealing",
        "paper p-annealing", "paper structured"]
    controls = tables.table_2_controls(res)
    assert list(controls.index) == list(table.index)
    assert list(controls.columns) == ["untrained top-k", "untrained p-annealing",
                                      "random features, top-k"]
    np.testing.assert_allclose(table["ours top-k"][:3], [0.7, 0.3, 0.6])
    assert list(table["paper structured"][:3]) == [PAPER_TABLE2[paper_name(n)][3] for n in NAMES]
    assert table.loc["mean PCC", "paper top-k"] == PAPER_MEAN[0], "the paper's own average row"
    assert table.loc["mean PCC", "ours top-k"] == pytest.approx(np.mean([0.7, 0.3, 0.6]))
    assert table.loc["coverage@0.5 (3 rows)", "ours top-k"] == pytest.approx(2 / 3)
