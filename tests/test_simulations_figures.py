"""Specification of ipta.simulations.figures on one small sweep (the shared smoke run): every
figure is a matplotlib figure with its panels."""

import pytest

from ipta.simulations import figures


@pytest.fixture
def res(simulations_smoke, close_figures):
    return simulations_smoke


FIGURES = {"figure_2": 2, "figure_training_loss": 2, "figure_controls": 2, "figure_layers": 1,
           "figure_unseen": 2}
"""Each figure of the chapter and its number of axes on this sweep (figure 2: the chain and the
one ER kind side by side, the legend in the figure)."""


@pytest.mark.parametrize("name", FIGURES)
def test_each_figure_is_a_matplotlib_figure_with_its_panels(res, name):
    from matplotlib.figure import Figure

    fig = getattr(figures, name)(res)
    assert isinstance(fig, Figure) and len(fig.axes) == FIGURES[name]


def test_every_figure_of_the_chapter_is_checked():
    assert {n for n in dir(figures) if n.startswith("figure_")} == set(FIGURES)
