"""Specification of ipta.sae.paper: the paper's Table 2 (appendix H.3) as printed, and our
concept names spelled the way it spells them."""

import numpy as np
import pytest

from ipta.lm.concepts import CONCEPT_NAMES
from ipta.sae.metrics import count_above, coverage_implied_rows
from ipta.sae.paper import PAPER_COVERAGE, PAPER_MEAN, PAPER_TABLE2, paper_name


@pytest.mark.parametrize("ours,theirs", [("verb-V+able", "verb_v_+_able"),
                                         ("3pSg-Ved", "3psg_ved"),
                                         ("adj-un+adj", "adj_un_+_adj"),
                                         ("English-French", "english_french")])
def test_paper_name_lowercases_and_spells_dashes_and_pluses_as_the_table_does(ours, theirs):
    assert paper_name(ours) == theirs


def test_every_one_of_our_27_concepts_is_exactly_one_row_of_the_table():
    names = [paper_name(c) for c in CONCEPT_NAMES]
    assert len(set(names)) == 27 and set(names) == set(PAPER_TABLE2)


def test_each_row_holds_four_correlations_and_the_structured_sae_leads_on_average():
    """Columns: top-k, batch-top-k, p-annealing, the structured SAE (the paper's order)."""
    table = np.array(list(PAPER_TABLE2.values()))
    assert table.shape == (27, 4) and ((table > 0) & (table <= 1)).all()
    assert np.argmax(PAPER_MEAN) == 3 and np.argmax(PAPER_COVERAGE) == 3


def test_the_average_row_is_each_columns_mean_rounded_to_three_decimals():
    means = np.array(list(PAPER_TABLE2.values())).mean(0)
    assert np.abs(means - np.array(PAPER_MEAN)).max() <= 0.0005


def test_paper_coverages_imply_28_rows_not_27():
    implied = coverage_implied_rows(dict(zip("abcd", PAPER_COVERAGE)))
    assert 28 in implied and 27 not in implied
    # the 28th row is the "average" row the table lists among the concepts
    for j, cov in enumerate(PAPER_COVERAGE):
        column = [row[j] for row in PAPER_TABLE2.values()] + [PAPER_MEAN[j]]
        assert count_above(column) == round(cov * 28)


def test_paper_table_lists_27_concepts_whose_means_match_its_average_row():
    assert len(PAPER_TABLE2) == 27
    means = np.array(list(PAPER_TABLE2.values())).mean(0)
    np.testing.assert_allclose(means, PAPER_MEAN, atol=1.5e-3)
