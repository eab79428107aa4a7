"""What every chapter notebook calls first: validated settings, shown on the page."""

from __future__ import annotations

import datetime
import platform
from collections.abc import Mapping
from typing import Any

from ipta.config import Config


def run_settings_markdown(cfg: Config, profile: str) -> str:
    """A Markdown table of the profile, every parameter and the software that produced the page."""
    import torch

    import ipta

    rows = [("profile", profile)]
    rows += [(k, repr(v)) for k, v in cfg.to_dict().items()]
    rows += [("ipta", ipta.__version__), ("torch", torch.__version__),
             ("python", platform.python_version()),
             ("run at", datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))]
    lines = ["**Run settings** (re-run with `ipta run <chapter> --profile PROFILE -p NAME VALUE`)",
             "", "| setting | value |", "|---|---|"]
    lines += [f"| `{k}` | `{v}` |" for k, v in rows]
    return "\n".join(lines)


def setup(config_cls: type[Config], profile: str = "default",
          params: Mapping[str, Any] | None = None, show: bool = True) -> Config:
    """Validate the papermill parameters into a config and show them as the page's first output."""
    cfg = config_cls.for_profile(profile, **dict(params or {}))
    if show:
        from IPython.display import Markdown, display

        display(Markdown(run_settings_markdown(cfg, profile)))
    return cfg
