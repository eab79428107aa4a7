"""Specification of ipta.probing.chapter: each model is loaded at most once per run; the page's
tables are narrow views of the summary."""

import pytest

from ipta.lm import models
from ipta.probing import chapter


def test_extraction_and_throughput_share_one_model_load(tmp_path, monkeypatch):
    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path))
    calls = []
    real = models.load_model
    monkeypatch.setattr(models, "load_model",
                        lambda *a, **k: calls.append(a) or real(*a, **k))
    cfg = chapter.Config.for_profile("smoke", modes=("paper",), seeds=(0,))
    res = chapter.run(cfg, progress=False)
    assert len(calls) == 1
    assert res.throughput["tiny:llama"] > 0
    chapter.run(cfg.replace(throughput=False), progress=False)
    assert len(calls) == 1  # warm: every representation cached, nothing to measure


def test_both_modes_are_keyed_by_every_argument_of_their_functions(tmp_path, monkeypatch):
    """The paper mode's and the rigorous mode's entries are keyed by every argument their
    functions take: a new max_iter or C sweep refits, the same settings read the entry."""
    import functools

    from ipta.probing.alignment import paper_mode, rigorous_mode

    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path))
    fits = []

    def counted(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            fits.append(func.__name__)
            return func(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(chapter, "paper_mode", counted(paper_mode))
    monkeypatch.setattr(chapter, "rigorous_mode", counted(rigorous_mode))
    cfg = chapter.Config.for_profile("smoke", seeds=(0,), throughput=False,
                                     positive_control=False)
    chapter.run(cfg, progress=False)
    chapter.run(cfg, progress=False)
    assert fits == ["paper_mode", "rigorous_mode"]
    chapter.run(cfg.replace(max_iter=50, rigorous_max_iter=60), progress=False)
    chapter.run(cfg.replace(C_sweep=(1e-2,)), progress=False)
    assert fits == ["paper_mode", "rigorous_mode", "paper_mode", "rigorous_mode",
                    "rigorous_mode"]


def test_the_page_tables_are_narrow_views_of_the_summary(probing_smoke):
    """What the page shows: every summary row with mode and kind as one reading and metrics as
    mean ± sd; the closing table's chosen rows; per concept the estimator and its ceiling."""
    res, cfg = probing_smoke
    table = chapter.table_summary(res)
    rows = chapter.table_rows(table)
    assert len(rows) == len(table) and len(rows.columns) == 8
    assert "paper: probe" in set(rows.reading) and "permuted-label null" in set(rows.reading)
    rigorous_probe = rows[rows.reading == "probe"]
    # One seed: no spread to show, so each cell is the mean alone.
    assert [float(x) for x in rigorous_probe["diagonal"]] == pytest.approx(
        table[(table["mode"] == "rigorous") & (table["kind"] == "probe")]["diag"].tolist(),
        abs=5e-3)
    closing = chapter.table_closing(table, res, cfg)
    assert list(closing.columns) == ["model", "set", "reading", "C", "diagonal",
                                     "|off-diagonal|", "held-out accuracy", "train pairs",
                                     "words/s"]
    assert set(closing.C.dropna()) <= {min(cfg.C_sweep), max(cfg.C_sweep), *table.C.dropna()}
    reliability = chapter.table_reliability(res)
    assert {c[-1] for c in reliability.columns} == {"estimator", "noise ceiling"}
    assert reliability.index.name == "concept"
