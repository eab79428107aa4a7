"""Specification of ipta.probing.chapter: each model is loaded at most once per run."""

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
