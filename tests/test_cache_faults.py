"""Fault injection on real cache entries: a byte flipped in any file the SAE pipeline caches
(activation shards and their metadata, word representations, a trained SAE's weights, its
result, every entry's cfg.json and manifest) is detected, the entry is rebuilt with a warning
naming it, and the numbers equal those of a clean run. Also: two processes training the same
SAE settings at once both finish with the same result.

Uses a random tiny model (no hub, no conversion), so the whole pipeline takes seconds."""

import json
import multiprocessing
import warnings

import numpy as np
import pytest

from ipta import cache
from ipta.lm.models import LazyModel
from ipta.sae import runs
from ipta.sae.config import Config as SAEConfig

pytestmark = pytest.mark.slow

SMOKE = dict(model="tiny:llama", concept_source="embedded", n_tokens=600, val_tokens=128,
             max_pairs_per_concept=3, steps=12, eval_every=6, checkpoint_every=6,
             n_features=32, k=4, batch_size=32, warmup_steps=2, sparsity_warmup_steps=2,
             rank=4, seeds=(0,))


def _pipeline():
    """The numbers a page would show: store rows, word representations, one SAE's result."""
    cfg = SAEConfig.for_profile("smoke", **SMOKE)
    model = LazyModel(cfg.model)
    store = runs.activations(cfg, progress=False, loaded=model)
    data = runs.concept_data(cfg, progress=False, loaded=model)
    run = runs.train_run(cfg, "topk", 0, store, data, progress=False)
    return {"rows": store.rows(np.arange(store.n_tokens)), "reps": data.reps_ND,
            "final": json.dumps(run.final, sort_keys=True),
            "history": json.dumps(run.history, sort_keys=True)}


def _same(a, b):
    np.testing.assert_array_equal(a["rows"], b["rows"])
    np.testing.assert_array_equal(a["reps"], b["reps"])
    assert a["final"] == b["final"] and a["history"] == b["history"]


def _cached_files():
    return sorted(p for entry in cache.entries() for p in entry.rglob("*") if p.is_file())


def test_a_byte_flipped_in_any_cached_file_is_detected_and_rebuilt_to_the_same_numbers(
        tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    cache._SOUND.clear()
    clean = _pipeline()
    files = _cached_files()
    kinds = {p.relative_to(tmp_path).parts[0] for p in files}
    assert {"sae_activations", "word_representations", "sae_run"} <= kinds
    rebuilt = 0
    for path in files:
        if not path.exists():
            continue
        name = path.relative_to(tmp_path)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))
        cache._SOUND.clear()  # as a new process would
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            again = _pipeline()
        damaged = [str(w.message) for w in caught if w.category is cache.CacheDamaged]
        assert any(name.parts[1] in m and "is damaged" in m for m in damaged), (name, damaged)
        _same(clean, again)
        rebuilt += 1
    assert rebuilt >= 12, f"only {rebuilt} files were damaged and rebuilt"
    report = cache.verify()
    assert all(problem is None for _, problem in report)
    print(f"\nfault cases rebuilt: {rebuilt} files across {sorted(kinds)}")


def _train_in_a_process(root):
    import os

    os.environ[cache.ENV_VAR] = str(root)
    return _pipeline()["final"]


def test_two_processes_training_the_same_sae_at_once_both_finish_with_one_result(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        a, b = pool.map(_train_in_a_process, [tmp_path, tmp_path])
    assert a == b
    assert len(list((tmp_path / "sae_run").iterdir())) == 1
