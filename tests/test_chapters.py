"""Specification of ipta.chapters: each notebook stem names one chapter package, whose light
config module declares the Config its chapter module uses; any other stem is refused."""

import importlib
from pathlib import Path

import pytest

from ipta.chapters import CHAPTERS, chapter_module, config_class
from ipta.config import Config, ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_every_notebook_is_a_chapter_and_every_chapter_a_notebook():
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py")) == sorted(CHAPTERS)


@pytest.mark.parametrize("stem", sorted(CHAPTERS))
def test_a_stem_maps_to_its_packages_chapter_module_and_config(stem):
    package = CHAPTERS[stem]
    module = chapter_module(stem)
    assert module is importlib.import_module(f"{package}.chapter")
    assert config_class(stem) is importlib.import_module(f"{package}.config").Config
    assert config_class(stem) is module.Config and issubclass(config_class(stem), Config)


@pytest.mark.parametrize("lookup", [chapter_module, config_class])
def test_an_unknown_stem_is_refused_naming_it_and_the_chapters(lookup):
    with pytest.raises(ConfigError, match=r"notebook '05_extra' is not a chapter of this book "
                                          r"\(known: 01_theory, 02_simulations, 03_llm_probing, "
                                          r"04_sae\)"):
        lookup("05_extra")
