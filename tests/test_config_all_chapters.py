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
