"""Fuzzing every parameter of every chapter: a value is either refused with a ConfigError that
names the parameter, or accepted as a config whose every value is finite and inside its
documented bounds. Values of every kind go to every field (a string to an int, a list to a
float, NaN, 10^15, empty lists, repeats), on top of the smoke profile.

Run with ``-s`` to see how many cases were generated, refused and accepted."""

import collections
import dataclasses
import math
import re
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipta.chapters import CHAPTERS, config_class
from ipta.config import MAX_INT, ConfigError

COUNTS: collections.Counter = collections.Counter()

EDGES = [0, 1, -1, 2, 7, 64, 256, 4097, 10**6, 10**9, 10**12, 2**53 + 1, -(10**12)]
NUMBERS = st.one_of(st.integers(-(10**15), 10**15), st.sampled_from(EDGES),
                    st.floats(allow_nan=True, allow_infinity=True))
WORDS = st.one_of(st.text(max_size=8),
                  st.sampled_from(["", " ", "nan", "inf", "1e400", "None", "true", "1,1",
                                   "[1, 1]", "[]", "auto", "cpu", "cuda", "cuda:7", "mps", "abc",
                                   "topk", "paper", "embedded", "ER1", "-1", "0.5"]))
SCALARS = st.one_of(NUMBERS, WORDS, st.booleans(), st.none())
VALUES = st.one_of(SCALARS, st.lists(st.one_of(NUMBERS, WORDS), max_size=4))


def _fields():
    return [(chapter, f.name) for chapter in sorted(CHAPTERS)
            for f in dataclasses.fields(config_class(chapter)) if f.name != "allow_huge"]


def _bounds_hold(cfg) -> list[str]:
    """What in an accepted config breaks its documented bounds (empty when nothing does)."""
    broken = []
    for f in dataclasses.fields(cfg):
        value, m = getattr(cfg, f.name), f.metadata
        items = value if isinstance(value, tuple) else (value,)
        if isinstance(value, tuple) and not value and not m.get("empty_ok"):
            broken.append(f"{f.name} is empty")
        if isinstance(value, tuple) and len(set(value)) != len(value):
            broken.append(f"{f.name} repeats a value")
        for v in items:
            if isinstance(v, float) and not math.isfinite(v):
                broken.append(f"{f.name}={v}")
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if m.get("low") is not None and v < m["low"]:
                    broken.append(f"{f.name}={v} < {m['low']}")
                if m.get("high") is not None and v > m["high"]:
                    broken.append(f"{f.name}={v} > {m['high']}")
                if m.get("limit") is not None and v > m["limit"] and not cfg.allow_huge:
                    broken.append(f"{f.name}={v} > limit {m['limit']}")
                if abs(v) > MAX_INT:
                    broken.append(f"{f.name}={v} beyond 2^53")
            if m.get("choices") is not None and v not in m["choices"]:
                broken.append(f"{f.name}={v!r} not a choice")
            if isinstance(v, str) and not v.strip():
                broken.append(f"{f.name} is an empty string")
    return broken


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print(f"\nfuzzed parameter values: {sum(COUNTS.values())} generated, "
          f"{COUNTS['refused']} refused with a ConfigError naming the parameter, "
          f"{COUNTS['accepted']} accepted within their bounds")


@pytest.mark.parametrize("chapter,name", _fields())
@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(value=VALUES)
def test_every_value_of_every_parameter_is_refused_by_name_or_accepted_within_bounds(
        chapter, name, value, monkeypatch_env):
    cls = config_class(chapter)
    try:
        cfg = cls.for_profile("smoke", **{name: value})
    except ConfigError as err:
        assert re.search(rf"\b{re.escape(name)}\b", str(err)), (name, value, str(err))
        COUNTS["refused"] += 1
        return
    assert _bounds_hold(cfg) == [], (name, value)
    COUNTS["accepted"] += 1


@pytest.fixture
def monkeypatch_env(monkeypatch):
    """No word-pair folder from the environment: the fuzzed value alone decides."""
    monkeypatch.delenv("IPTA_WORD_PAIRS_DIR", raising=False)


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_soft_limits_are_lifted_by_allow_huge_and_hard_bounds_are_not(chapter):
    cls = config_class(chapter)
    limited = [f for f in dataclasses.fields(cls) if f.metadata.get("limit") is not None]
    if chapter == "01_theory":
        assert not limited  # every size there has a hard bound
        return
    assert limited, f"{chapter} declares no soft limit"
    for f in limited:
        over = int(f.metadata["limit"]) + 1
        with pytest.raises(ConfigError, match=rf"'{f.name}': {over} is above its limit.*allow_huge"):
            cls.for_profile("smoke", **{f.name: over})
        try:
            cfg = cls.for_profile("smoke", allow_huge=True, **{f.name: over})
        except ConfigError as err:  # a cross-field rule may still refuse it, by name
            assert f.name in str(err) and "above its limit" not in str(err)
        else:
            assert getattr(cfg, f.name) == over
    with pytest.raises(ConfigError, match="beyond any size"):
        cls.for_profile("smoke", allow_huge=True, **{limited[0].name: 2**60})


def test_the_fuzz_sees_every_kind_of_field():
    """Guard against a vacuous pass: ints, floats, strings, lists and bools are all fuzzed."""
    kinds = set()
    for chapter, name in _fields():
        typ = typing.get_type_hints(config_class(chapter))[name]
        kinds.add(typing.get_origin(typ) or typ)
    assert {int, float, str, tuple, bool} <= kinds
