"""Specification of ipta.probing.figures: Figure 3's heatmaps and the sweep of C."""

import numpy as np
import pytest

from ipta.probing import chapter, figures


@pytest.fixture
def res(probing_smoke):
    return probing_smoke


def test_the_heatmaps_draw_one_matrix_per_model_and_set_with_a_colour_bar(res, close_figures):
    result, cfg = res
    fig = figures.figure_cos_heatmaps({"a": np.eye(5), "b": -np.eye(5)},
                                      tuple("vwxyz"))
    assert len(fig.axes) == 4  # two heatmaps, two colour bars
    fig = figures.figure_rigorous_heatmaps(result, cfg)
    assert len(fig.axes) == 2  # the language model's only: the controls have other concepts


def test_the_c_sweep_has_a_panel_per_model_and_set_the_controls_included(res, close_figures):
    result, _ = res
    table = chapter.table_summary(result)
    groups = table[table["mode"] == "rigorous"].groupby(["model", "set"]).ngroups
    fig = figures.figure_c_sweep(table)
    assert groups == 3 and sum(ax.has_data() for ax in fig.axes) == groups
