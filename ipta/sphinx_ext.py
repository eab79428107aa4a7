"""A Sphinx extension for the book (listed in ``_config.yml``): it refuses to build a site
without its chapters, and tells the reader which profile built each of them.

- Before anything is read, every chapter notebook must have been executed into
  ``book/executed/`` (``ipta run``); otherwise the build stops with that instruction, instead of
  Jupyter Book's silent, chapterless site.
- The MyST substitution ``{{ built_with }}`` says which profile built the chapters: one
  sentence when they share one, a warning listing each chapter's when they do not.
- One setting, ``ipta_repository_url`` in ``_config.yml`` (or ``$IPTA_REPOSITORY_URL``), turns
  on the repository button and the Binder launch buttons.
- The ``{eval}`` role reads ``v["key:spec"]`` as the value the notebook glued under ``key``
  (:mod:`ipta.prose`): myst-nb's own ``{eval}`` needs a live kernel, which a book built from
  executed notebooks does not have, while JupyterLab evaluates the same text in its kernel.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def chapter_profiles(root: Path) -> dict[str, str | None]:
    """Each chapter's profile, read from its executed notebook (None if not executed)."""
    from ipta.runner import EXECUTED_DIR, list_chapters

    out: dict[str, str | None] = {}
    for chapter in list_chapters(root):
        path = root / EXECUTED_DIR / f"{chapter}.ipynb"
        try:
            params = json.loads(path.read_text())["metadata"]["papermill"]["parameters"]
            out[chapter] = str(params.get("profile", "default"))
        except (OSError, ValueError, KeyError, TypeError):
            out[chapter] = None
    return out


def built_with(profiles: dict[str, str | None]) -> str:
    """The intro's sentence on the profiles that built this site."""
    used = sorted({p for p in profiles.values() if p})
    if len(used) == 1:
        return f"The chapters you are reading were all built with the `{used[0]}` profile."
    each = ", ".join(f"{c} with `{p}`" for c, p in profiles.items())
    return (f"**This site mixes profiles** ({each}): its chapters' numbers do not come from "
            "one setting. `ipta run --profile default` rebuilds them all with the book's.")


REPOSITORY_VARIABLE = "IPTA_REPOSITORY_URL"
STATIC = Path(__file__).parent / "static"
"""``ipta.css``: figures that scroll on a phone instead of shrinking, equations that scroll
instead of being clipped."""


def repository_options(url: str, branch: str = "main") -> dict[str, Any]:
    """sphinx-book-theme options for the repository button and the Binder launch button, made
    from the repository's URL alone. Launch buttons open ``book/executed/NN_*.ipynb``, which
    ``binder/postBuild`` writes from the sources."""
    if not url:
        return {}
    return {"repository_url": url, "repository_branch": branch, "path_to_docs": "",
            "use_repository_button": True,
            "launch_buttons": {"binderhub_url": "https://mybinder.org",
                               "notebook_interface": "jupyterlab"}}


def _on_config(app: Any, config: Any) -> None:
    import os

    from sphinx.errors import ExtensionError

    url = os.environ.get(REPOSITORY_VARIABLE) or getattr(config, "ipta_repository_url", "")
    if url:
        config.html_theme_options = {**(config.html_theme_options or {}),
                                     **repository_options(url)}

    config.html_static_path = [*(getattr(config, "html_static_path", None) or []), str(STATIC)]
    root = Path(app.srcdir)
    profiles = chapter_profiles(root)
    missing = [c for c, p in profiles.items() if p is None]
    if missing:
        message = (f"the chapters {', '.join(missing)} have not been executed: run `ipta run` "
                   "(or `make book`) before building the site")
        # First, on a line of its own: what Sphinx prints after (its traceback) buries it.
        print(f"ipta: error: {message}", file=sys.stderr, flush=True)
        raise ExtensionError(message)
    config.myst_substitutions = {**(config.myst_substitutions or {}),
                                 "built_with": built_with(profiles)}


def eval_from_glue(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
                   options: Any = None, content: Any = ()) -> tuple[list, list]:
    """``{eval}`v["key:spec"]``` as ``{glue:text}`key:spec``` (``{glue:md}`key``` for
    ``:md``); anything else is an error naming the one form the book reads."""
    from myst_nb.ext.glue.roles import PasteMarkdownRole, PasteTextRole

    from ipta.prose import parse

    try:
        key, spec = parse(text)
    except ValueError as err:
        msg = inliner.reporter.error(str(err), line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    if spec == "md":
        return PasteMarkdownRole()("glue:md", rawtext, key, lineno, inliner, options, content)
    glued = f"{key}:{spec}" if spec else key
    return PasteTextRole()("glue:text", rawtext, glued, lineno, inliner, options, content)


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("ipta_repository_url", "", "html")
    app.add_role("eval", eval_from_glue, override=True)
    app.add_css_file("ipta.css")
    app.connect("config-inited", _on_config)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
