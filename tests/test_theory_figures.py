"""Specification of ipta.theory.figures on one small sweep (the shared smoke run): every figure
is a matplotlib figure with its panels."""

import pytest

from ipta.theory import chapter, figures


@pytest.fixture
def res(theory_smoke, close_figures):
    return theory_smoke


FIGURES = {  # name: (its arguments after the result, its number of axes)
    "figure_r2": (lambda r: (), 4),  # 2 weightings x 2 token noises
    "figure_r2_grid": (lambda r: (), 2 * 2),  # a heatmap and its colour bar per weighting
    "figure_ess": (lambda r: (), 1),
    "figure_diversity": (lambda r: (), 2),
    "figure_kl_curve": (lambda r: (), 1),
    "figure_context_residuals": (lambda r: (), 3 + 1),  # one per feature, and a colour bar
    "figure_cosines": (lambda r: (chapter.invertibility_quarters(r),), 2),
    "figure_probe_heatmaps": (lambda r: (chapter.extreme_settings(r),), 2 * 2),
    "figure_token_channel": (lambda r: (), 3),
}


@pytest.mark.parametrize("name", FIGURES)
def test_each_figure_is_a_matplotlib_figure_with_its_panels(res, name):
    from matplotlib.figure import Figure

    arguments, n_axes = FIGURES[name]
    fig = getattr(figures, name)(res, *arguments(res))
    assert isinstance(fig, Figure) and len(fig.axes) == n_axes


def test_every_figure_of_the_chapter_is_checked():
    drawn = {n for n in dir(figures) if n.startswith("figure_") and callable(getattr(figures, n))}
    assert drawn == set(FIGURES)
