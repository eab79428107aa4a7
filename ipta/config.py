"""Validated, frozen configuration dataclasses shared by the notebooks, the profiles and the CLI.

Every chapter declares one subclass of :class:`Config`.  Each field is declared with
:func:`param`, which carries a one-line docstring and its allowed values; validation runs on
creation, so a bad value is refused before any computation, with a message that names the field
and what it allows.  Profiles (``smoke``, ``default``, ``paper``) are dictionaries of overrides
on top of the field defaults, which are the ``default`` profile.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

PROFILES = ("smoke", "classroom", "default", "paper")
"""Profile names: ``smoke`` for tests (tiny), ``classroom`` for a lesson (each chapter in about
two minutes on a 2-core laptop, real models), ``default`` for the book on CPU, ``paper`` for a
GPU."""


class ConfigError(ValueError):
    """A parameter name or value that the configuration does not allow."""

    def _render_traceback_(self) -> list[str]:
        """In a notebook (IPython), the message alone: the stack above it is ipta's, not the
        reader's, and would push the one line that matters to the bottom."""
        return [f"ConfigError: {self}"]


MAX_INT = 2**53
"""No int parameter may exceed this in size, ``allow_huge`` or not (floats are exact up to it)."""

SEED_HIGH = 2**31 - 1
"""Largest seed (numpy, torch and scikit-learn all accept it)."""


def param(default: Any, doc: str, *, choices: Sequence[Any] | None = None,
          low: float | None = None, high: float | None = None, limit: float | None = None,
          empty_ok: bool = False, path: bool | str = False, check: Any = None,
          affects_results: bool = True) -> Any:
    """Declare a config field with its docstring and the values it allows.

    ``choices`` restricts a scalar (or every element of a tuple) to a set; ``low``/``high``
    bound a number (or every element of a tuple of numbers), both inclusive. ``limit`` is a
    soft upper bound on a size or count: above it the value is refused as a likely typo unless
    the config sets ``allow_huge`` (``ipta run --allow-huge``). A tuple must hold at least one
    value unless ``empty_ok``; a string must not be empty. ``path=True`` marks a folder path,
    made absolute against the working directory where the config is built (the user's, for
    ``ipta run``; not the notebook kernel's). ``path="or_name"`` marks a value (or each of a
    tuple) that is a folder or a name (a model: short name, hub id or local folder): made
    absolute when it is written as a path (``.``, ``/`` or ``~`` first) or names an existing
    folder with a ``/`` in it, left as it is otherwise. ``check(value)`` returns ``None`` or what is
    wrong with a value (run after the other checks). ``affects_results=False`` declares that
    the field cannot change a cached result (where to compute, how often to checkpoint, a path
    whose files' checksums are keyed instead): it is left out of :meth:`Config.cache_spec`.
    Every other field is part of every cache key.
    """
    meta = {"doc": doc, "choices": tuple(choices) if choices is not None else None,
            "low": low, "high": high, "limit": limit, "empty_ok": empty_ok, "path": path,
            "check": check, "affects_results": affects_results}
    return dataclasses.field(default=default, metadata=meta)


def _local_absolute(value: Any) -> Any:
    """``value`` made absolute if it is written as a path or names an existing folder with a
    ``/`` in it (as Hugging Face's loaders read ``org/name``: the folder first)."""
    if not isinstance(value, str):
        return value
    written_as_path = value.startswith((".", "/", "~"))
    if written_as_path or ("/" in value and Path(value).is_dir()):
        return os.path.abspath(os.path.expanduser(value))  # normalised: no "work/../"
    return value


def _fmt_allowed(f: dataclasses.Field, typ: Any) -> str:
    m = f.metadata
    if m.get("choices"):
        many = typing.get_origin(typ) is tuple
        return (("each " if many else "") + "one of " + ", ".join(repr(c) for c in m["choices"])
                + (" (at least one)" if many and not m.get("empty_ok") else ""))
    parts = [_type_name(typ)]
    if m.get("low") is not None:
        parts.append(f">= {m['low']}")
    if m.get("high") is not None:
        parts.append(f"<= {m['high']}")
    if m.get("limit") is not None:
        parts.append(f"<= {m['limit']:,} (more with allow_huge)")
    if typing.get_origin(typ) is tuple and not m.get("empty_ok"):
        parts.append("(at least one)")
    return " ".join(parts)


def _type_name(typ: Any) -> str:
    origin = typing.get_origin(typ)
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(typ)[0])}"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(typ))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(typ))
    return getattr(typ, "__name__", str(typ))


def _coerce_scalar(name: str, value: Any, typ: Any) -> Any:
    """Convert ``value`` (possibly a CLI string) to ``typ``; raise ConfigError if impossible."""
    if typing.get_origin(typ) is Literal:
        allowed = typing.get_args(typ)
        if value not in allowed:
            raise ConfigError(f"parameter {name!r}: {value!r} is not allowed; "
                              f"choose one of {', '.join(repr(a) for a in allowed)}")
        return value
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce_scalar(name, value, a)
            except ConfigError:
                pass
        raise ConfigError(f"parameter {name!r}: {value!r} is not a {_type_name(typ)}")
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"parameter {name!r}: {value!r} is not a bool (true or false)")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"parameter {name!r}: {value!r} is not an int")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"parameter {name!r}: {value!r} is not an int")
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(f"parameter {name!r}: {value!r} is not a float")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"parameter {name!r}: {value!r} is not a float")
    if typ is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"parameter {name!r}: {value!r} is not a str")
    return value


def _coerce(name: str, value: Any, typ: Any) -> Any:
    if typing.get_origin(typ) is tuple:
        elem = typing.get_args(typ)[0]
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as e:
                    raise ConfigError(f"parameter {name!r}: cannot read {value!r} as a list: {e}")
            else:
                value = [v.strip() for v in text.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce_scalar(name, v, elem) for v in value)
    return _coerce_scalar(name, value, typ)


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class: frozen, validated on creation, built from dicts with unknown keys refused."""

    PROFILES: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    """Overrides per profile, on top of the field defaults (which are the ``default`` profile)."""

    allow_huge: bool = param(False, "lift the soft upper bounds ('more with allow_huge') on "
                             "sizes and counts, for a run that really is that large",
                             affects_results=False)

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            typ = hints[f.name]
            value = _coerce(f.name, getattr(self, f.name), typ)
            if f.metadata.get("path") == "or_name":
                value = (tuple(_local_absolute(v) for v in value) if isinstance(value, tuple)
                         else _local_absolute(value))
            elif f.metadata.get("path") and value is not None:
                value = str(Path(value).expanduser().absolute())
            object.__setattr__(self, f.name, value)
            self._check(f, typ, value)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses override and raise ConfigError."""

    def _check(self, f: dataclasses.Field, typ: Any, value: Any) -> None:
        items = value if isinstance(value, tuple) else (value,)
        m = f.metadata
        if isinstance(value, tuple) and not value and not m.get("empty_ok"):
            raise ConfigError(f"parameter {f.name!r}: the list is empty; allowed: "
                              f"{_fmt_allowed(f, typ)}")
        if isinstance(value, tuple) and len(set(value)) != len(value):
            # Every list here names runs, settings or concepts: a repeat is counted twice.
            repeated = next(v for v in value if value.count(v) > 1)
            raise ConfigError(f"parameter {f.name!r}: {value!r} repeats {repeated!r}; "
                              "give each value once")
        for v in items:
            if v is None:
                continue
            if isinstance(v, float) and not math.isfinite(v):
                # NaN passes every range check (comparisons with it are false).
                raise ConfigError(f"parameter {f.name!r}: {v!r} is not a finite number; "
                                  f"allowed: {_fmt_allowed(f, typ)}")
            if m.get("choices") is not None and v not in m["choices"]:
                raise ConfigError(f"parameter {f.name!r}: {v!r} is not allowed; "
                                  f"choose {_fmt_allowed(f, typ)}")
            if m.get("low") is not None and v < m["low"]:
                raise ConfigError(f"parameter {f.name!r}: {v!r} is out of range; "
                                  f"allowed: {_fmt_allowed(f, typ)}")
            if m.get("high") is not None and v > m["high"]:
                raise ConfigError(f"parameter {f.name!r}: {v!r} is out of range; "
                                  f"allowed: {_fmt_allowed(f, typ)}")
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
                raise ConfigError(f"parameter {f.name!r}: {v!r} is beyond any size this "
                                  f"book can run (|value| <= 2^53)")
            if m.get("limit") is not None and v > m["limit"] and not self.allow_huge:
                raise ConfigError(f"parameter {f.name!r}: {v!r} is above its limit "
                                  f"{m['limit']:,}, a guard against typos; if the run really "
                                  "is that large, add allow_huge=true (ipta run --allow-huge)")
            if isinstance(v, str) and not v.strip():
                raise ConfigError(f"parameter {f.name!r}: an empty string is not allowed; "
                                  f"allowed: {_fmt_allowed(f, typ)}")
            if m.get("check") is not None:
                problem = m["check"](v)
                if problem:
                    raise ConfigError(f"parameter {f.name!r}: {v!r} {problem}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Config":
        """Build from a mapping; an unknown key is refused with the list of known ones."""
        known = cls.field_names()
        unknown = [k for k in values if k not in known]
        if unknown:
            raise ConfigError(f"unknown parameter {unknown[0]!r} for {cls.__name__}; "
                              f"known parameters: {', '.join(known)}")
        return cls(**values)

    @classmethod
    def for_profile(cls, profile: str = "default", **overrides: Any) -> "Config":
        """The profile's settings, then ``overrides`` on top (CLI strings are accepted)."""
        if profile not in PROFILES:
            raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
        values = dict(cls.PROFILES.get(profile, {}))
        values.update(overrides)
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    def cache_spec(self, exclude: Sequence[str] = ()) -> dict[str, Any]:
        """The fields that can change a result, as JSON-ready values: what a cache key holds.

        Every field counts unless it was declared ``affects_results=False``; ``exclude`` drops
        fields that a caller keys in another way (e.g. one run of a sweep keys its own seed
        instead of the sweep's list of seeds). Unknown names in ``exclude`` are an error, so a
        renamed field cannot silently stay in a key.
        """
        names = self.field_names()
        unknown = [n for n in exclude if n not in names]
        if unknown:
            raise KeyError(f"cache_spec(exclude=...): {unknown} are not fields of "
                           f"{type(self).__name__}")
        keep = {f.name for f in dataclasses.fields(self)
                if f.metadata.get("affects_results", True) and f.name not in exclude}
        return {k: v for k, v in self.to_dict().items() if k in keep}

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    @classmethod
    def describe(cls) -> list[tuple[str, str, str, str]]:
        """Rows (name, default, allowed, doc) for help texts and the book."""
        hints = typing.get_type_hints(cls)
        fields = sorted(dataclasses.fields(cls), key=lambda f: f.name in _BASE_FIELDS)
        return [(f.name, repr(f.default), _fmt_allowed(f, hints[f.name]), f.metadata.get("doc", ""))
                for f in fields]


_BASE_FIELDS = {f.name for f in dataclasses.fields(Config)}
"""Fields every chapter has (``allow_huge``): listed after the chapter's own."""
