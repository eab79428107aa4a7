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


def run_settings_html(rows: list[tuple[str, str]]) -> str:
    """The same table as HTML: the book renders Markdown outputs as CommonMark, which has no tables."""
    hint = html.escape(HINT).replace("`", "")
    body = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(v)}</code></td></tr>"
                   for k, v in rows)
    return (f"<p><strong>{TITLE}</strong> ({hint})</p>"
            f"<table><thead><tr><th>setting</th><th>value</th></tr></thead><tbody>{body}</tbody></table>")


def setup(config_cls: type[Config], profile: str = "default",
          params: Mapping[str, Any] | None = None, show: bool = True) -> Config:
    """Validate the papermill parameters into a config and show them as the page's first output."""
    cfg = config_cls.for_profile(profile, **dict(params or {}))
    if show:
        from IPython.display import display

        rows = run_settings_rows(cfg, profile)
        markdown = run_settings_markdown(rows)
        display({"text/html": run_settings_html(rows), "text/markdown": markdown,
                 "text/plain": markdown}, raw=True)
    return cfg


def setup_for(config_cls: type[Config]):
    """The ``setup(profile, params, show)`` function of a chapter module whose Config is
    ``config_cls``: every chapter gets the same one, so notebooks call ``chapter.setup``."""

    def chapter_setup(profile: str = "default", params: Mapping[str, Any] | None = None,
                      show: bool = True) -> Config:
        """The chapter's validated settings, shown as the page's first output."""
        return setup(config_cls, profile, params, show)

    return chapter_setup


def glue_values(values: dict[str, Any]) -> dict[str, Any]:
    """Glue (myst-nb) every value for the page's prose to quote, hidden where computed.

    numpy scalars become Python numbers first: their numpy-2 reprs are not numbers to a
    ``{glue:text}`key:.3f``` role. Returns the converted values."""
    import numpy as np
    from myst_nb import glue

    for name, value in values.items():
        if isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, (int, np.integer)):
            value = int(value)
        elif isinstance(value, (float, np.floating)):
            value = float(value)
        values[name] = value
        glue(name, value, display=False)
    return values
