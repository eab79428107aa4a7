"""How a table reads on a page: no 0..N index column, blanks where a value does not apply (k and
alpha of variants that have none), numbers to three significant digits, and a long table folded
under a summary line, so every table fits the book's column at 1400 px and in JupyterLab.

:func:`use_page_tables` makes this the HTML of every pandas DataFrame a notebook displays
(:func:`ipta.notebook.setup` calls it), so chapter modules return plain DataFrames (which tests
and users index as usual) and the notebooks stay one call per table.
"""

from __future__ import annotations

import html
import math
from typing import Any

FOLD_ROWS = 16
"""Tables with more rows than this are shown folded (a summary line, click to open)."""

STYLE = "font-size: 0.85em; max-width: 100%;"


def cell_text(value: Any) -> str:
    """A cell as text: blank for a missing value, three significant digits for a float
    (thousands grouped, never in e-notation above 1e-3), the value's own text otherwise."""
    if value is None:
        return ""
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        x = float(value)
        if math.isnan(x):
            return ""
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x == 0 or 1e-3 <= abs(x) < 1e3:
            text = f"{x:.3g}"
            return text if "e" not in text else f"{x:.3f}"
        return f"{x:,.0f}" if abs(x) >= 1e3 else f"{x:.1e}"
    import pandas as pd

    if pd.api.types.is_scalar(value) and pd.isna(value):  # pandas' NA and NaT
        return ""
    return str(value)


def page_table_html(df: Any, fold_rows: int = FOLD_ROWS) -> str:
    """``df`` as the HTML table a page shows: a meaningful index becomes ordinary columns, a
    0..N one is dropped; more than ``fold_rows`` rows are folded under a summary line."""
    import pandas as pd

    if not isinstance(df.index, pd.RangeIndex) or df.index.name is not None:
        df = df.reset_index()
    columns = [" · ".join(str(c) for c in col if str(c)) if isinstance(col, tuple) else str(col)
               for col in df.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell_text(v))}</td>" for v in row)
                   + "</tr>" for row in df.itertuples(index=False, name=None))
    table = (f'<table class="dataframe ipta-table" style="{STYLE}"><thead><tr>{head}</tr>'
             f"</thead><tbody>{rows}</tbody></table>")
    if len(df) <= fold_rows:
        return table
    return (f'<details class="ipta-long-table"><summary>a table of {len(df)} rows '
            f"(click to show)</summary>{table}</details>")


def mean_sd(mean: Any, sd: Any) -> list[str]:
    """Columns of means and standard deviations as one column of "mean ± sd" texts (blank where
    the mean is missing; the mean alone where the spread is)."""
    return [cell_text(m) if cell_text(m) == "" or cell_text(s) == ""
            else f"{cell_text(m)} ± {cell_text(s)}" for m, s in zip(mean, sd)]


class Folded:
    """A table shown folded under ``summary`` whatever its length (for tables of exact numbers
    that a figure above already shows); the DataFrame itself is ``.frame``."""

    def __init__(self, frame: Any, summary: str) -> None:
        self.frame, self.summary = frame, summary

    def _repr_html_(self) -> str:
        table = page_table_html(self.frame, fold_rows=len(self.frame) + 1)
        return (f'<details class="ipta-long-table"><summary>{html.escape(self.summary)} '
                f"(click to show)</summary>{table}</details>")

    def __repr__(self) -> str:
        return f"{self.summary}\n{self.frame!r}"


def folded(frame: Any, summary: str) -> Folded:
    """``frame`` shown folded under ``summary``."""
    return Folded(frame, summary)


def use_page_tables(shell: Any = None) -> None:
    """Show every DataFrame the running IPython displays as :func:`page_table_html`; nothing
    outside IPython."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
    if shell is None:
        return
    import pandas as pd

    shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, page_table_html)
