"""Specification of ipta.figures: every figure function draws at the page's fonts and leaves
the caller's settings as they were; a glued figure is closed, so it appears once on the page."""

import matplotlib
import pytest

from ipta.figures import PAGE_WIDTH, STYLE, glue_figure, page_style

matplotlib.use("Agg")


def test_a_styled_function_draws_with_the_pages_fonts_and_restores_the_callers():
    import matplotlib.pyplot as plt

    @page_style
    def draw(title):
        """A figure function."""
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3))
        ax.set_title(title)
        ax.set_xlabel("x")
        return fig, matplotlib.rcParams["font.size"]

    with plt.rc_context({"font.size": 7, "axes.labelsize": 7}):
        fig, inside = draw("t")
        assert inside == STYLE["font.size"] != 7
        assert fig.axes[0].xaxis.label.get_fontsize() == STYLE["axes.labelsize"]
        assert fig.dpi == STYLE["figure.dpi"]
        assert matplotlib.rcParams["font.size"] == 7
    assert draw.__name__ == "draw" and draw.__doc__ == "A figure function."
    plt.close(fig)


def test_the_callers_fonts_are_restored_when_drawing_fails():
    @page_style
    def broken():
        raise RuntimeError("no data")

    with matplotlib.rc_context({"font.size": 7}):
        with pytest.raises(RuntimeError):
            broken()
        assert matplotlib.rcParams["font.size"] == 7


def test_a_glued_figure_is_closed():
    import matplotlib.pyplot as plt

    fig = plt.figure()
    assert plt.fignum_exists(fig.number)
    glue_figure("test_figure", fig)
    assert not plt.fignum_exists(fig.number)
