"""What every chapter notebook calls first: validated settings, shown on the page."""

from __future__ import annotations

import datetime
import html
import platform
from collections.abc import Mapping
from typing import Any

from ipta.config import Config


def run_settings_rows(cfg: Config, profile: str) -> list[tuple[str, str]]:
    """(setting, value) pairs: the profile, every parameter and the software that produced the page."""
    import torch

    import ipta

    rows = [("profile", profile)]
    rows += [(k, repr(v)) for k, v in cfg.to_dict().items()]
    rows += [("ipta", ipta.__version__), ("torch", torch.__version__),
             ("python", platform.python_version()),
             ("run at", datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))]
    return rows


TITLE = "Run settings"
HINT = "re-run with `ipta run <chapter> --profile PROFILE -p NAME VALUE`"


def run_settings_markdown(rows: list[tuple[str, str]]) -> str:
    """The run settings as a Markdown table (for Jupyter and text outputs)."""
    lines = [f"**{TITLE}** ({HINT})", "", "| setting | value |", "|---|---|"]
    lines += [f"| `{k}` | `{v}` |" for k, v in rows]
    return "\n".join(lines)


def run_settings_html(rows: list[tuple[str, str]], profile: str = "") -> str:
    """The same table as HTML, folded under a title that names the profile (the book renders
    Markdown outputs as CommonMark, which has no tables)."""
    hint = html.escape(HINT).replace("`", "")
    body = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(v)}</code></td></tr>"
                   for k, v in rows)
    title = f"{TITLE}: profile <code>{html.escape(profile)}</code>" if profile else TITLE
    return (f"<details class=\"ipta-run-settings\"><summary><strong>{title}</strong> "
            f"(click to show every parameter; {hint})</summary>"
            f"<table><thead><tr><th>setting</th><th>value</th></tr></thead><tbody>{body}</tbody>"
            "</table></details>")


def setup(config_cls: type[Config], profile: str = "default",
          params: Mapping[str, Any] | None = None, show: bool = True, *,
          namespace: Mapping[str, Any] | None = None) -> Config:
    """Validate the parameters into a config and show them as the page's first output.

    ``namespace`` is the notebook's ``globals()``: each of the chapter's parameters that its
    ``parameters`` cell (or papermill's injected cell) set to something other than ``None``
    is taken, on top of ``params``. From here on the notebook shows DataFrames as page tables
    (:mod:`ipta.tables`) and draws no progress bars."""
    from ipta.progress import silence_notebook_bars
    from ipta.tables import use_page_tables

    silence_notebook_bars()
    use_page_tables()
    values = dict(params or {})
    if namespace is not None:
        values.update(given_parameters(config_cls, namespace))
    cfg = config_cls.for_profile(profile, **values)
    if show:
        from IPython.display import display

        rows = run_settings_rows(cfg, profile)
        markdown = run_settings_markdown(rows)
        display({"text/html": run_settings_html(rows, profile), "text/markdown": markdown,
                 "text/plain": markdown}, raw=True)
    return cfg


# ---------------------------------------------------------------- the parameters cell
PROFILE_LINE = ('profile: str = "default"  # preset that the values below override: smoke '
                '(seconds), classroom (a couple of minutes a chapter), default (the book, CPU) '
                'or paper (the paper\'s sizes, a GPU)')


def _annotation(typ: Any) -> str:
    """The plain type papermill shows for a parameter: int, float, bool, str or list."""
    import types
    import typing

    origin = typing.get_origin(typ)
    if origin is tuple:
        return "list"
    if origin in (typing.Union, types.UnionType):
        return _annotation(next(a for a in typing.get_args(typ) if a is not type(None)))
    if origin is typing.Literal:
        return "str"
    return getattr(typ, "__name__", "str")


def parameters_cell_source(config_cls: type[Config]) -> str:
    """The source of a chapter's ``parameters`` cell, made from its Config so the two cannot
    drift: ``profile``, then one typed line per parameter, ``None`` meaning "the profile's
    value", with the parameter's doc as the comment papermill's ``--help-notebook`` shows."""
    import typing

    hints = typing.get_type_hints(config_cls)
    lines = [PROFILE_LINE, "# Each parameter below: None = the profile's value."]
    for name, _default, allowed, doc in config_cls.describe():
        comment = _without_equals(f"{doc} [{allowed}]")
        lines.append(f"{name}: {_annotation(hints[name])} = None  # {comment}")
    return "\n".join(lines)


def _without_equals(text: str) -> str:
    """papermill skips a parameter line holding a second '=': comparisons become the signs
    themselves, and '=' the full-width sign."""
    return text.replace(">=", "\u2265").replace("<=", "\u2264").replace("=", "\uff1d")


def given_parameters(config_cls: type[Config], namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The chapter's parameters that ``namespace`` sets to something other than ``None``.

    A name papermill injected that is not one of them (``-p stepz 7``) is refused, as
    ``ipta run`` refuses it: papermill itself only warns and runs on with the profile's value."""
    from ipta.config import ConfigError

    known = {"profile", *config_cls.field_names()}
    unknown = [name for name in injected_names(namespace) if name not in known]
    if unknown:
        raise ConfigError(f"unknown parameter {unknown[0]!r}; this chapter's parameters: "
                          f"{', '.join(sorted(known))}")
    return {name: namespace[name] for name in config_cls.field_names()
            if namespace.get(name) is not None}


INJECTED_HEADER = "# Parameters"
"""The first line of the cell papermill injects after a notebook's ``parameters`` cell."""


def injected_names(namespace: Mapping[str, Any]) -> list[str]:
    """The names assigned by the cell papermill injected, read from IPython's input history
    (``In``) in ``namespace``; none outside papermill."""
    import ast

    for source in reversed(list(namespace.get("In") or [])):
        if isinstance(source, str) and source.lstrip().startswith(INJECTED_HEADER):
            try:
                tree = ast.parse(source)
            except SyntaxError:
                return []
            return [target.id for node in tree.body if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Name)]
    return []


def setup_for(config_cls: type[Config]):
    """The ``setup(profile, params, show)`` function of a chapter module whose Config is
    ``config_cls``: every chapter gets the same one, so notebooks call ``chapter.setup``."""

    def chapter_setup(profile: str = "default", params: Mapping[str, Any] | None = None,
                      show: bool = True, *, namespace: Mapping[str, Any] | None = None) -> Config:
        """The chapter's validated settings, shown as the page's first output; ``namespace``:
        the notebook's ``globals()``, holding its parameters cell's values."""
        return setup(config_cls, profile, params, show, namespace=namespace)

    return chapter_setup
