"""The content-addressed cache: same spec, same entry; entries appear whole or not at all."""

import json

import numpy as np
import pytest

import ipta
from ipta import cache


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "cache"))


def test_the_cache_lives_where_the_environment_variable_says(tmp_path):
    assert cache.cache_root() == tmp_path / "cache"


def test_equal_specs_share_a_key_and_different_specs_or_versions_do_not(monkeypatch):
    a = cache.cache_key("acts", {"model": "m", "layer": -1, "words": ("a", "b")})
    assert a == cache.cache_key("acts", {"layer": -1, "words": ["a", "b"], "model": "m"})
    assert a != cache.cache_key("acts", {"model": "m", "layer": -2, "words": ("a", "b")})
    assert a != cache.cache_key("probe", {"model": "m", "layer": -1, "words": ("a", "b")})
    monkeypatch.setattr(ipta, "__version__", "999")
    assert a != cache.cache_key("acts", {"model": "m", "layer": -1, "words": ("a", "b")})


def test_a_result_is_computed_once_and_then_read_back_equal():
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(6.0).reshape(2, 3)}, {"seed": 3}

    first = cache.get_or_compute("toy", {"n": 2}, compute)
    second = cache.get_or_compute("toy", {"n": 2}, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first[0]["x"], second[0]["x"])
    assert second[1] == {"seed": 3}


def test_an_interrupted_build_leaves_no_entry_and_the_next_call_builds_it():
    def interrupted(_tmp):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.get_or_build_dir("toy", {"n": 1}, interrupted)
    kind_dir = cache.cache_root() / "toy"
    assert [p for p in kind_dir.iterdir()] == []
    path = cache.get_or_build_dir("toy", {"n": 1}, lambda tmp: (tmp / "w.txt").write_text("ok"))
    assert (path / "w.txt").read_text() == "ok"


def test_the_entry_records_its_spec_without_absolute_paths():
    path = cache.get_or_build_dir("toy", {"n": 1, "source": "embedded"}, lambda tmp: None)
    recorded = json.loads((path / "cfg.json").read_text())
    assert recorded == {"kind": "toy", "spec": {"n": 1, "source": "embedded"}}


def test_file_checksum_is_the_sha256_of_the_bytes(tmp_path):
    f = tmp_path / "f.txt"
    f.write_bytes(b"abc")
    assert cache.file_checksum(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
