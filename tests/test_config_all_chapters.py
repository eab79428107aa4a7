"""Rules every chapter's parameters obey, checked on every field of every chapter's Config."""

import dataclasses
import typing

import pytest

from ipta.chapters import CHAPTERS, config_class
from ipta.config import ConfigError


def _fields(kind):
    """(chapter, field name, element type) for every field whose type (or element) is ``kind``."""
    out = []
    for chapter in sorted(CHAPTERS):
        cls = config_class(chapter)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            typ = hints[f.name]
            elem = typing.get_args(typ)[0] if typing.get_origin(typ) is tuple else typ
            if kind == "float" and float in (elem, *typing.get_args(elem)):
                out.append((chapter, f.name))
            if kind == "tuple" and typing.get_origin(typ) is tuple:
                out.append((chapter, f.name))
    return out


@pytest.mark.parametrize("chapter,name", _fields("float"))
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_every_float_parameter_refuses_nan_and_infinity(chapter, name, bad):
    with pytest.raises(ConfigError, match=rf"'{name}': .* not a finite number"):
        config_class(chapter).for_profile("smoke", **{name: bad})


@pytest.mark.parametrize("chapter,name", _fields("tuple"))
def test_every_list_parameter_refuses_a_repeated_value(chapter, name):
    cls = config_class(chapter)
    value = getattr(cls.for_profile("smoke"), name) or getattr(cls(), name)
    if not value:
        pytest.skip(f"{name} is empty in both profiles: nothing to repeat")
    with pytest.raises(ConfigError, match=rf"'{name}': .* repeats"):
        cls.for_profile("smoke", **{name: (value[0], *value)})


def test_the_rules_found_fields_to_check():
    """Guard against a vacuous pass: there are float and list parameters in the chapters."""
    assert len(_fields("float")) >= 10 and len(_fields("tuple")) >= 10


# ------------------------------------------------------------- the hostile user's cases
DEVICE_CHAPTERS = [c for c in sorted(CHAPTERS) if "device" in config_class(c).field_names()]


@pytest.mark.parametrize("chapter", DEVICE_CHAPTERS)
@pytest.mark.parametrize("bad", ["abc", "cuda:x", "gpu", "cuda:-1"])
def test_a_device_that_is_not_one_is_refused_naming_the_choices(chapter, bad):
    with pytest.raises(ConfigError, match=r"'device': .* is not a device; choose one of 'auto', "
                                          r"'cpu', 'cuda', 'cuda:N', 'mps'"):
        config_class(chapter).for_profile("smoke", device=bad)


@pytest.mark.parametrize("chapter", DEVICE_CHAPTERS)
def test_an_absent_gpu_is_refused_before_any_computation(chapter):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    for asked in ("cuda", "cuda:3"):
        with pytest.raises(ConfigError, match=r"'device': .* no CUDA device; use 'auto' or 'cpu'"):
            config_class(chapter).for_profile("smoke", device=asked)
    assert config_class(chapter).for_profile("smoke", device="cpu").device == "cpu"


@pytest.mark.parametrize("chapter", ["02_simulations", "03_llm_probing", "04_sae"])
def test_an_empty_list_of_seeds_is_refused(chapter):
    with pytest.raises(ConfigError, match=r"'seeds': the list is empty"):
        config_class(chapter).for_profile("smoke", seeds="")


@pytest.fixture
def no_pairs_env(monkeypatch):
    monkeypatch.delenv("IPTA_WORD_PAIRS_DIR", raising=False)
    return monkeypatch


PAIRS_CHAPTERS = [("03_llm_probing", {"concept_sources": "embedded,paper"}),
                  ("04_sae", {"concept_source": "auto"})]


@pytest.mark.parametrize("chapter,extra", PAIRS_CHAPTERS)
def test_a_named_word_pair_folder_that_is_missing_is_an_error_not_a_fallback(
        chapter, extra, no_pairs_env, tmp_path):
    cls = config_class(chapter)
    with pytest.raises(ConfigError, match=r"named by parameter 'word_pairs_dir' cannot be used: "
                                          r".*does not exist"):
        cls.for_profile("smoke", word_pairs_dir=str(tmp_path / "nowhere"), **extra)
    no_pairs_env.setenv("IPTA_WORD_PAIRS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"named by \$IPTA_WORD_PAIRS_DIR cannot be used"):
        cls.for_profile("smoke", **extra)


@pytest.mark.parametrize("chapter,extra", PAIRS_CHAPTERS)
def test_an_incomplete_or_modified_word_pair_folder_names_the_file(chapter, extra, no_pairs_env,
                                                                     tmp_path):
    from ipta.lm.concepts import PAPER_FILES

    cls = config_class(chapter)
    with pytest.raises(ConfigError, match=r"lacks the file '\[verb - 3pSg\]\.txt'"):
        cls.for_profile("smoke", word_pairs_dir=str(tmp_path), **extra)
    for _, file_name, _ in PAPER_FILES:
        (tmp_path / file_name).write_text("walk\twalks\n")
    with pytest.raises(ConfigError, match=r"\[verb - 3pSg\]\.txt: sha256 [0-9a-f]{64} does not "
                                          r"match the paper's file"):
        cls.for_profile("smoke", word_pairs_dir=str(tmp_path), **extra)


def test_with_no_folder_named_the_sae_chapter_uses_the_embedded_set_and_probing_notes_it(
        no_pairs_env):
    assert config_class("04_sae").for_profile("smoke", concept_source="auto")
    with pytest.raises(ConfigError, match=r"'concept_sources': only 'paper' was asked for, but "
                                          r"no folder of its files was named"):
        config_class("03_llm_probing").for_profile("smoke", concept_sources="paper")


@pytest.mark.parametrize("chapter", ["03_llm_probing", "04_sae"])
def test_a_relative_folder_is_made_absolute_where_the_config_is_built(chapter, no_pairs_env,
                                                                      tmp_path):
    no_pairs_env.chdir(tmp_path)
    with pytest.raises(ConfigError, match=rf"{tmp_path / 'pairs'}.*does not exist"):
        config_class(chapter).for_profile("smoke", word_pairs_dir="pairs")


@pytest.mark.parametrize("chapter,field", [("03_llm_probing", "models"), ("04_sae", "model")])
def test_a_model_folder_is_read_from_the_users_directory_and_names_stay_names(chapter, field,
                                                                              monkeypatch,
                                                                              tmp_path):
    """`-p model ../folder` means the folder beside where ipta ran, not beside notebooks/; short
    names, hub ids and 'tiny:' specs are left alone (a hub id is not a folder here)."""
    (tmp_path / "org" / "local").mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    cls = config_class(chapter)
    for given, expected in [("../org/local", str(tmp_path / "org" / "local")),
                            ("./mine", str(work / "mine")),
                            ("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M"),
                            ("smollm2-135m", "smollm2-135m"), ("tiny:llama", "tiny:llama")]:
        value = getattr(cls.for_profile("smoke", **{field: given}), field)
        assert value == ((expected,) if field == "models" else expected)
    monkeypatch.chdir(tmp_path)
    value = getattr(cls.for_profile("smoke", **{field: "org/local"}), field)
    assert value == ((str(tmp_path / "org" / "local"),) if field == "models"
                     else str(tmp_path / "org" / "local"))
