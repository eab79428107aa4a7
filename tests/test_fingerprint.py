"""Specification of ipta.fingerprint: the code a cached result depends on, and what of it counts."""

import sys
import textwrap

import pytest

from ipta import cache, fingerprint


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
    assert set(fingerprint.code_closure(["fakepkg.work"])) == {"fakepkg", "fakepkg.work",
                                                         "fakepkg.helper"}
    before = cache.cache_key("k", {}, ["fakepkg.work"])
    work = fake_package / "work.py"
    work.write_text(work.read_text().replace('"""Run it."""', '"""Run it, now documented."""  # note'))
    assert cache.cache_key("k", {}, ["fakepkg.work"]) == before
    helper = fake_package / "helper.py"
    helper.write_text("def twice(x):\n    return x + x + 0\n")
    assert cache.cache_key("k", {}, ["fakepkg.work"]) != before


def test_each_chapters_cached_results_depend_on_the_modules_that_compute_them():
    theory = fingerprint.code_closure(["ipta.theory.checks"])
    assert {"ipta.latent.dag", "ipta.latent.observe", "ipta.theory.nexttoken",
            "ipta.probes"} <= set(theory)
    assert "ipta.theory.chapter" not in theory  # tables and figures never invalidate results
    sae = fingerprint.code_closure(["ipta.sae.runs"])
    assert {"ipta.sae.model", "ipta.sae.train", "ipta.sae.metrics", "ipta.lm.corpus",
            "ipta.sae.mechanisms", "ipta.sae.mechanisms.ksparse",
            "ipta.sae.mechanisms.annealing"} <= set(sae)
    assert not {m for m in [*theory, *sae] if m.endswith(".config")}  # keyed by their values


def test_a_config_modules_doc_text_keeps_keys_and_its_defaults_change_them(fake_package):
    """Config modules are left out of code fingerprints (their values are in every key): a
    reworded parameter keeps every entry; a new default changes the key through cache_spec."""
    import importlib

    config = fake_package / "config.py"
    config.write_text(textwrap.dedent('''\
        import dataclasses
        from ipta.config import Config as Base, param

        @dataclasses.dataclass(frozen=True)
        class Config(Base):
            steps: int = param(10, "optimiser steps", low=1)
        '''))
    work = fake_package / "work.py"
    work.write_text("from fakepkg.config import Config\n\ndef run(cfg: Config):\n"
                    "    return cfg.steps\n")

    def key():
        module = importlib.reload(importlib.import_module("fakepkg.config"))
        return cache.cache_key("k", {"config": module.Config()}, ["fakepkg.work"])

    before = key()
    assert "fakepkg.config" not in fingerprint.code_closure(["fakepkg.work"])
    config.write_text(config.read_text().replace("optimiser steps", "Adam steps per run"))
    assert key() == before
    config.write_text(config.read_text().replace("param(10,", "param(20,"))
    assert key() != before


def test_the_storage_modules_are_left_out_and_the_storage_format_is_in_every_key(monkeypatch):
    """Hardening the cache (ipta.cache, ipta.integrity) must not retrain every SAE: those
    modules compute no result; a change to how entries are stored bumps cache.FORMAT instead."""
    sae = fingerprint.code_closure(["ipta.sae.runs"])
    assert "ipta.sae.train" in sae and not fingerprint.STORAGE_MODULES & set(sae)
    before = cache.cache_key("k", {}, ["ipta.sae.runs"])
    monkeypatch.setattr(cache, "FORMAT", cache.FORMAT + 1)
    assert cache.cache_key("k", {}, ["ipta.sae.runs"]) != before
