"""The content-addressed cache: same spec, same entry; entries appear whole or not at all; keys
derived from every results-affecting config field and from the code that computes them."""

import dataclasses
import json
import sys
import textwrap

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


def test_file_checksum_is_the_sha256_of_the_bytes(tmp_path):
    f = tmp_path / "f.txt"
    f.write_bytes(b"abc")
    assert cache.file_checksum(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


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


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A package ``fakepkg`` with a module whose worker imports a helper lazily."""
    root = tmp_path / "src"
    (root / "fakepkg").mkdir(parents=True)
    (root / "fakepkg" / "__init__.py").write_text("")
    (root / "fakepkg" / "work.py").write_text(textwrap.dedent('''\
        """Work."""
        def run():
            """Run it."""
            from fakepkg.helper import twice  # lazy, inside the function
            return twice(2)
        '''))
    (root / "fakepkg" / "helper.py").write_text("def twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(root))
    yield root / "fakepkg"
    for name in [m for m in sys.modules if m.startswith("fakepkg")]:
        del sys.modules[name]


def test_the_code_fingerprint_follows_lazy_imports_and_ignores_docstrings(fake_package):
    """Editing code that a result depends on changes the key; a comment or docstring does not."""
    assert set(cache.code_closure(["fakepkg.work"])) == {"fakepkg", "fakepkg.work",
                                                         "fakepkg.helper"}
    before = cache.cache_key("k", {}, ["fakepkg.work"])
    work = fake_package / "work.py"
    work.write_text(work.read_text().replace('"""Run it."""', '"""Run it, now documented."""  # note'))
    assert cache.cache_key("k", {}, ["fakepkg.work"]) == before
    helper = fake_package / "helper.py"
    helper.write_text("def twice(x):\n    return x + x + 0\n")
    assert cache.cache_key("k", {}, ["fakepkg.work"]) != before


def test_each_chapters_cached_results_depend_on_the_modules_that_compute_them():
    theory = cache.code_closure(["ipta.theory.checks"])
    assert {"ipta.latent.dag", "ipta.latent.observe", "ipta.theory.nexttoken",
            "ipta.probing.probes"} <= set(theory)
    assert "ipta.theory.chapter" not in theory  # tables and figures never invalidate results
    sae = cache.code_closure(["ipta.sae.runs"])
    assert {"ipta.sae.model", "ipta.sae.train", "ipta.sae.metrics", "ipta.lm.corpus"} <= set(sae)


def test_a_key_without_code_is_refused():
    with pytest.raises(ValueError, match="code"):
        cache.cache_key("k", {}, ())
