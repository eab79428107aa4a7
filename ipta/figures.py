"""What every chapter's figures share: the page's width, its fonts, and numbered captions.

The book's text column is about 760 px wide in a 1400 px window. A figure drawn
:data:`PAGE_WIDTH` inches wide at 100 dpi is shown at its own size there, so a 12-point label
stays 12 points; wider figures were shrunk and their labels became unreadable. Every
``figure_*`` function of a chapter module is wrapped in :func:`page_style`, and its panels are
laid out for that width (stacked, not side by side, when there are more than two).

:func:`save_figure` writes a figure to ``figures/<name>.png`` beside the notebook, where a
``{figure}`` directive in the next Markdown cell shows it, numbered, with its caption and alt
text: the one directive that the book (myst-nb) and JupyterLab (jupyterlab-myst) both draw.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
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


FIGURES_VARIABLE = "IPTA_FIGURES_DIR"
"""Where :func:`save_figure` writes, if set (``ipta run`` points it at a temporary folder it
publishes beside the executed notebook); else ``figures/`` in the working directory, which in
Jupyter is the notebook's folder."""


def figures_dir() -> Path:
    return Path(os.environ.get(FIGURES_VARIABLE) or "figures")


def save_figure(name: str, fig: Any) -> None:
    """Write ``fig`` to ``figures/<name>.png`` (see :func:`figures_dir`) for the ``{figure}``
    directive that captions it, and close it. Returns nothing: it is a cell's last line, and a
    value would be shown on the page (a path, under the runner's temporary folder)."""
    import matplotlib.pyplot as plt

    folder = figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    tmp = folder / f".{name}.{os.getpid()}.png"
    try:
        fig.savefig(tmp, format="png", dpi=STYLE["savefig.dpi"], bbox_inches="tight")
        os.replace(tmp, path)  # a reader never sees half a file
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)
