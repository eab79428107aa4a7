"""What every chapter's figures share: the page's width, its fonts, and numbered captions.

The book's text column is about 760 px wide in a 1400 px window. A figure drawn
:data:`PAGE_WIDTH` inches wide at 100 dpi is shown at its own size there, so a 12-point label
stays 12 points; wider figures were shrunk and their labels became unreadable. Every
``figure_*`` function of a chapter module is wrapped in :func:`page_style`, and its panels are
laid out for that width (stacked, not side by side, when there are more than two).

:func:`glue_figure` hands a figure to myst-nb, so the page shows it once, in a numbered
``{glue:figure}`` with a caption and alt text written beside it in the notebook.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

PAGE_WIDTH = 7.6
"""Inches: the book's text column at 100 dpi."""

STYLE = {"figure.dpi": 100, "savefig.dpi": 100, "font.size": 12, "axes.titlesize": 12,
         "axes.labelsize": 12, "xtick.labelsize": 10.5, "ytick.labelsize": 10.5,
         "legend.fontsize": 10, "figure.titlesize": 13}
"""Fonts that read at page width (points at 100 dpi: one point is 1.39 px)."""


def page_style(draw: Callable[..., Any]) -> Callable[..., Any]:
    """Run a figure function under :data:`STYLE` (fonts are fixed when artists are made)."""

    @functools.wraps(draw)
    def styled(*args: Any, **kwargs: Any) -> Any:
        import matplotlib.pyplot as plt

        with plt.rc_context(STYLE):
            return draw(*args, **kwargs)

    return styled


def glue_figure(name: str, fig: Any) -> None:
    """Glue ``fig`` under ``name`` for a ``{glue:figure}`` directive and close it, so the
    notebook cell itself shows nothing (the figure appears once, where it is captioned)."""
    import matplotlib.pyplot as plt
    from myst_nb import glue

    glue(name, fig, display=False)
    plt.close(fig)
