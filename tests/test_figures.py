"""Specification of ipta.figures: every figure function draws at the page's fonts and leaves
the caller's settings as they were; a glued figure is closed, so it appears once on the page."""

import matplotlib
import pytest

from ipta.figures import FIGURES_VARIABLE, PAGE_WIDTH, STYLE, page_style, save_figure

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


def test_a_saved_figure_is_a_whole_png_beside_the_notebook_and_is_closed(tmp_path, monkeypatch):
    """Without the runner's folder, figures/ in the working directory (in Jupyter, the
    notebook's folder, where the {figure} directive's relative path points)."""
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(FIGURES_VARIABLE, raising=False)
    fig = plt.figure(figsize=(PAGE_WIDTH, 3))
    assert plt.fignum_exists(fig.number)
    assert save_figure("test-figure", fig) is None  # a cell's last line: a value would show
    assert not plt.fignum_exists(fig.number)
    assert (tmp_path / "figures" / "test-figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in (tmp_path / "figures").iterdir()] == ["test-figure.png"]
    monkeypatch.setenv(FIGURES_VARIABLE, str(tmp_path / "run"))
    save_figure("other", plt.figure())
    assert (tmp_path / "run" / "other.png").is_file()
