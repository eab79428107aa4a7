"""Specification of ipta.sae.figures on runs built by hand: each figure is drawn at the page's
width, with one panel per metric or reading and one line or bar per run group."""

import types

import matplotlib
import numpy as np
import pytest

from ipta.figures import PAGE_WIDTH
from ipta.sae import figures
from ipta.sae.labels import label
from ipta.sae.long import SERIES, summarise_long
from ipta.sae.runs import Run

matplotlib.use("Agg")
READINGS = ("mean_pcc", "mean_pcc_raw", "mean_pcc_spearman", "mean_pcc_exp_std",
            "mean_pcc_heldout")


def _history(seed):
    return [{"step": s, "val_mse": 1.0 / s + 0.01 * seed, "mean_pcc": 0.1 * s + 0.01 * seed,
             **{key: 0.2 for key in SERIES if key not in ("val_mse", "mean_pcc")}}
            for s in (1, 2, 3)]


def _run(variant, seed, kind="trained", k=8):
    final = {key: 0.3 + 0.1 * seed for key in READINGS} | {
        "val_l0": 8.0, "pairs_mse": 0.1 * (seed + 1), "pairs_l0": 8.0}
    return Run(variant, seed, 0.0, k, _history(seed), final, None, kind=kind)


@pytest.fixture(scope="module")
def res():
    main = [_run(v, s) for v in ("topk", "panneal") for s in (0, 1)]
    controls = [_run(v, s, "untrained") for v in ("topk", "panneal") for s in (0, 1)] + [
        _run("random_topk", s, "random_topk") for s in (0, 1)]
    return types.SimpleNamespace(main=main, matched=[_run("topk", 0, k=3)], controls=controls)


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def test_curves_have_a_panel_per_metric_and_a_line_per_label_averaged_over_seeds(res):
    fig = figures.figure_curves(res.main, ("val_mse", "mean_pcc"), label, "training")
    assert fig.get_size_inches()[0] == PAGE_WIDTH and len(fig.axes) == 2
    mse, pcc = fig.axes
    assert [line.get_label() for line in pcc.lines] == ["top-k (2 seeds)", "p-annealing (2 seeds)"]
    np.testing.assert_allclose(pcc.lines[0].get_ydata(), [0.105, 0.205, 0.305])
    assert mse.get_yscale() == "log" and pcc.get_ylabel() == "mean PCC (paper's)"
    assert fig._suptitle.get_text() == "training"


def test_the_final_mse_has_a_bar_per_variant_of_the_first_seed_and_per_matched_run(res):
    fig = figures.figure_final_mse(res)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "top-k\nown L0 (8)", "p-annealing\nown L0 (8)", "top-k\nk=3"]
    assert [bar.get_height() for bar in ax.patches] == pytest.approx([0.1, 0.1, 0.1])


def test_the_chance_figure_has_a_panel_per_reading_and_a_bar_per_label(res):
    fig = figures.figure_chance(res)
    assert len(fig.axes) == len(READINGS)
    names = ["top-k", "p-annealing", "untrained top-k", "untrained p-annealing",
             "random features, top-k"]
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_yticklabels()] == names
        assert [bar.get_width() for bar in ax.patches] == pytest.approx([0.35] * 5)


def test_without_a_long_summary_the_figure_says_how_to_make_one():
    fig = figures.figure_long(None)
    (ax,) = fig.axes
    assert not ax.axison and "ipta sae-long" in ax.texts[0].get_text()


def test_the_long_figure_has_a_panel_per_series_and_a_line_per_variant(res):
    from ipta.sae.config import Config

    summary = summarise_long(res.main[::2], res.controls,
                             Config.for_profile("smoke", concept_source="embedded"))
    fig = figures.figure_long(summary)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == len(figures.LONG_PANELS)
    assert fig.get_size_inches()[0] == PAGE_WIDTH
    for ax, key in zip(panels, figures.LONG_PANELS):  # the readings' margins: a zero line too
        assert len(ax.lines) == 2 + key.startswith("mean_pcc"), key
