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
