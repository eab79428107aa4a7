"""The content-addressed cache: same spec, same entry; entries appear whole or not at all; keys
derived from every results-affecting config field and from the code that computes them."""

import dataclasses
import json

import numpy as np
import pytest

import ipta
from ipta import cache
from ipta.config import Config, param

CODE = ("ipta.cache",)


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "cache"))


def test_the_cache_lives_where_the_environment_variable_says(tmp_path):
    assert cache.cache_root() == tmp_path / "cache"


def test_equal_specs_share_a_key_and_different_specs_or_versions_do_not(monkeypatch):
    a = cache.cache_key("acts", {"model": "m", "layer": -1, "words": ("a", "b")}, CODE)
    assert a == cache.cache_key("acts", {"layer": -1, "words": ["a", "b"], "model": "m"}, CODE)
    assert a != cache.cache_key("acts", {"model": "m", "layer": -2, "words": ("a", "b")}, CODE)
    assert a != cache.cache_key("probe", {"model": "m", "layer": -1, "words": ("a", "b")}, CODE)
    monkeypatch.setattr(ipta, "__version__", "999")
    assert a != cache.cache_key("acts", {"model": "m", "layer": -1, "words": ("a", "b")}, CODE)


def test_a_result_is_computed_once_and_then_read_back_equal():
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(6.0).reshape(2, 3)}, {"seed": 3}

    first = cache.get_or_compute("toy", {"n": 2}, compute, code=CODE)
    second = cache.get_or_compute("toy", {"n": 2}, compute, code=CODE)
    assert len(calls) == 1
    np.testing.assert_array_equal(first[0]["x"], second[0]["x"])
    assert second[1] == {"seed": 3}


def test_an_interrupted_build_leaves_no_entry_and_the_next_call_builds_it():
    def interrupted(_tmp):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.get_or_build_dir("toy", {"n": 1}, interrupted, code=CODE)
    kind_dir = cache.cache_root() / "toy"
    assert [p for p in kind_dir.iterdir()] == []
    path = cache.get_or_build_dir("toy", {"n": 1}, lambda tmp: (tmp / "w.txt").write_text("ok"),
                                  code=CODE)
    assert (path / "w.txt").read_text() == "ok"


def test_the_entry_records_its_spec_without_absolute_paths():
    path = cache.get_or_build_dir("toy", {"n": 1, "source": "embedded"}, lambda tmp: None,
                                  code=CODE)
    recorded = json.loads((path / "cfg.json").read_text())
    assert recorded == {"kind": "toy", "spec": {"n": 1, "source": "embedded"}}


@dataclasses.dataclass(frozen=True)
class ToyConfig(Config):
    steps: int = param(3, "a field that changes results")
    device: str = param("cpu", "where to compute", affects_results=False)


def test_a_results_affecting_field_rebuilds_and_a_declared_one_reuses_the_entry():
    """Every field counts unless declared affects_results=False (device, progress, ...)."""
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.zeros(1)}, {}

    cache.get_or_compute("toy", {"config": ToyConfig()}, compute, code=CODE)
    cache.get_or_compute("toy", {"config": ToyConfig(device="cuda")}, compute, code=CODE)
    assert len(calls) == 1
    cache.get_or_compute("toy", {"config": ToyConfig(steps=4)}, compute, code=CODE)
    assert len(calls) == 2


def test_arrays_in_a_spec_are_keyed_by_their_bytes():
    a = cache.cache_key("k", {"x": np.arange(3.0)}, CODE)
    assert a == cache.cache_key("k", {"x": np.arange(3.0)}, CODE)
    assert a != cache.cache_key("k", {"x": np.arange(3.0) + 1e-12}, CODE)
    assert a != cache.cache_key("k", {"x": np.arange(3.0, dtype=np.float32)}, CODE)


def test_a_key_without_code_is_refused():
    with pytest.raises(ValueError, match="code"):
        cache.cache_key("k", {}, ())


# ------------------------------------------------------------------------ damaged entries
def _toy_entry(calls=None):
    def compute():
        if calls is not None:
            calls.append(1)
        return {"x": np.arange(1000.0), "y": np.eye(3)}, {"seed": 3, "note": "toy"}

    return cache.get_or_compute("toy", {"n": 7}, compute, code=CODE)


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGE = {
    "flip a byte in arrays.npz": lambda e: _flip(e / "arrays.npz"),
    "truncate arrays.npz": lambda e: (e / "arrays.npz").write_bytes(
        (e / "arrays.npz").read_bytes()[:200]),
    "edit meta.json": lambda e: (e / "meta.json").write_text('{"seed": 4, "note": "toy"}'),
    "bad JSON in meta.json": lambda e: (e / "meta.json").write_text("{"),
    "delete cfg.json": lambda e: (e / "cfg.json").unlink(),
    "delete the manifest": lambda e: (e / "manifest.json").unlink(),
    "bad JSON in the manifest": lambda e: (e / "manifest.json").write_text("[1,"),
    "an extra file": lambda e: (e / "stray.npy").write_bytes(b"x"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_entry_is_moved_aside_and_rebuilt_equal_every_time(damage):
    calls = []
    clean_arrays, clean_meta = _toy_entry(calls)
    for attempt in range(2):  # the second round: rebuilding over a broken entry works again
        entry = next((cache.cache_root() / "toy").iterdir())
        DAMAGE[damage](entry)
        cache._SOUND.clear()  # a new process: nothing checked yet
        with pytest.warns(cache.CacheDamaged, match=rf"{entry.name} is damaged: .*rebuilt|"
                                                   rf"{entry.name} is damaged: .*built again"):
            arrays, meta = _toy_entry(calls)
        assert len(calls) == 2 + attempt
        np.testing.assert_array_equal(arrays["x"], clean_arrays["x"])
        assert meta == clean_meta
        assert cache.check_entry(entry) is None
    assert len(list((cache.damaged_dir() / "toy").iterdir())) == 2


def test_a_sound_entry_is_read_without_a_warning_or_a_rebuild(recwarn):
    calls = []
    _toy_entry(calls)
    cache._SOUND.clear()
    _toy_entry(calls)
    assert calls == [1] and not [w for w in recwarn if w.category is cache.CacheDamaged]


def test_large_entries_are_checked_by_size_and_sampled_blocks(monkeypatch):
    _toy_entry()
    entry = next((cache.cache_root() / "toy").iterdir())
    monkeypatch.setattr(cache, "FULL_CHECK_BYTES", 10)
    (entry / "meta.json").write_text((entry / "meta.json").read_text()[:-1] + " ")
    assert "meta.json does not match" in cache.check_entry(entry)  # small files: hashed whole
    assert cache.check_entry(entry, full=True) is not None


def test_temporaries_left_by_a_killed_build_are_removed_by_the_next_build():
    final = cache.entry_dir("toy", {"n": 7}, CODE)
    final.parent.mkdir(parents=True)
    stale = final.parent / f".{final.name}.tmp-killed"
    (stale / "half").mkdir(parents=True)
    _toy_entry()
    assert not stale.exists()


def test_verify_reports_a_damaged_entry_and_clean_removes_what_no_run_reads():
    _toy_entry()
    entry = next((cache.cache_root() / "toy").iterdir())
    assert cache.verify() == [(entry, None)]
    _flip(entry / "arrays.npz")
    (report,) = cache.verify(move=True)
    assert report[0] == entry and "arrays.npz does not match its recorded SHA-256" in report[1]
    assert not entry.exists()
    stale = entry.parent / f".{entry.name}.tmp-abc"
    stale.mkdir()
    gone = cache.clean()
    assert stale in gone and not stale.exists() and not list(cache.damaged_dir().iterdir())


def _build_slowly(root, counter):
    import os
    import time as time_

    os.environ[cache.ENV_VAR] = str(root)

    def build(tmp):
        with open(counter, "a") as fh:
            fh.write("built\n")
        time_.sleep(1.0)
        (tmp / "out.txt").write_text("done")

    path = cache.get_or_build_dir("toy", {"n": 9}, build, code=CODE)
    return (path / "out.txt").read_text()


def test_two_processes_asking_for_one_entry_build_it_once_and_both_read_it(tmp_path):
    import multiprocessing

    counter = tmp_path / "counter.txt"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        out = pool.starmap(_build_slowly, [(tmp_path / "cache", counter)] * 2)
    assert out == ["done", "done"]
    assert counter.read_text() == "built\n"
