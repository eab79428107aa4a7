"""Specification of ipta.tables: a table on a page has no 0..N index, blanks where a value
does not apply, three significant digits, and folds when long."""

import math

import numpy as np
import pandas as pd
import pytest

from ipta.tables import FOLD_ROWS, cell_text, folded, page_table_html, use_page_tables


@pytest.mark.parametrize("value,text", [
    (None, ""), (float("nan"), ""), (np.float32("nan"), ""), (pd.NA, ""),
    (0.0, "0"), (0.123456, "0.123"), (np.float64(12.3456), "12.3"), (-0.0004567, "-4.6e-04"),
    (123456.7, "123,457"), (math.inf, "∞"), (3, "3"), ("top-k", "top-k"), (True, "True"),
])
def test_a_cell_reads_as_three_significant_digits_or_blank(value, text):
    assert cell_text(value) == text


def test_a_range_index_is_dropped_a_named_one_kept_as_columns_and_nan_left_blank():
    plain = pd.DataFrame({"variant": ["topk", "panneal"], "k": [32, np.nan]})
    page = page_table_html(plain)
    assert page.count("<th>") == 2 and "<td>0</td>" not in page and "nan" not in page.lower()
    assert "<td>topk</td><td>32</td>" in page and "<td>panneal</td><td></td>" in page
    named = plain.set_index("variant")
    assert page_table_html(named) == page
    grouped = pd.DataFrame({"a": [1, 1], "b": [2, 3], "x": [0.5, 0.25]}).set_index(["a", "b"])
    assert page_table_html(grouped).count("<th>") == 3


def test_a_long_table_is_folded_under_a_summary_and_a_short_one_is_not():
    short, long = pd.DataFrame({"x": range(FOLD_ROWS)}), pd.DataFrame({"x": range(FOLD_ROWS + 1)})
    assert "<details" not in page_table_html(short)
    assert page_table_html(long).startswith('<details class="ipta-long-table"><summary>a table '
                                            f"of {FOLD_ROWS + 1} rows")
    shown = folded(short, "Exact numbers")._repr_html_()
    assert shown.startswith('<details class="ipta-long-table"><summary>Exact numbers')
    assert shown.count("<details") == 1 and shown.count("<tr>") == FOLD_ROWS + 1


def test_the_notebook_shows_every_dataframe_as_a_page_table():
    from IPython.core.formatters import DisplayFormatter

    class Shell:
        display_formatter = DisplayFormatter()

    shell = Shell()
    frame = pd.DataFrame({"variant": ["topk"], "alpha": [np.nan]})
    assert "NaN" in shell.display_formatter.formatters["text/html"](frame)  # pandas' own
    use_page_tables(shell)
    assert shell.display_formatter.formatters["text/html"](frame) == page_table_html(frame)
