"""Numbers in a chapter's prose, in one syntax that both renderings understand:
``{eval}`v["white_gap:.3f"]``` (a value the chapter computed, by name, with a format spec;
``:md`` for a sentence written in Markdown).

- In JupyterLab, jupyterlab-myst evaluates the expression in the kernel, where the notebook's
  ``v`` is :data:`GLUED`: every value the chapter has glued, formatted on lookup.
- In the book, myst-nb has no kernel; :mod:`ipta.sphinx_ext` reads ``{eval}`` as the value
  glued under that name, formatted as ``{glue:text}`` formats it (``{glue:md}`` for ``:md``).
- The runner writes each Markdown cell's results into its ``user_expressions`` metadata
  (:func:`with_user_expressions`), so a published notebook opened in JupyterLab shows them
  without being run again.
"""

from __future__ import annotations

import ast
import re
from typing import Any

ROLE = re.compile(r"\{eval\}`([^`]+)`")
"""An ``{eval}`` role in Markdown; group 1 is its expression."""

EXPRESSION = re.compile(r'^v\["([A-Za-z_][A-Za-z0-9_]*)(?::([^"]*))?"\]$')
"""The one expression form the book reads: ``v["key"]`` or ``v["key:spec"]``."""


class Shown:
    """A value as the prose shows it: ``repr`` is the text itself (no quotes), and a Markdown
    sentence keeps its Markdown for renderers that take it."""

    def __init__(self, text: str, markdown: str | None = None) -> None:
        self.text, self.markdown = text, markdown

    def __repr__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str | None:
        return self.markdown


def parse(expression: str) -> tuple[str, str]:
    """``(key, spec)`` of ``v["key:spec"]``; ValueError naming the form for anything else."""
    found = EXPRESSION.match(expression.strip())
    if found is None:
        raise ValueError(f'{{eval}}`{expression}`: the book reads only v["key"] or '
                         f'v["key:format"] (a value the chapter glued, by name)')
    return found.group(1), found.group(2) or ""


MARKUP = re.compile(r"[*`_\[\]$]")
"""Characters that make a glued sentence Markdown rather than plain words."""


def shown(value: Any, spec: str) -> Shown:
    """``value`` formatted by ``spec`` (``md``: a Markdown sentence; empty: as it is).

    A sentence without Markdown markup (most of them: a list of variant names, a verdict in
    words) is shown as plain text: jupyterlab-myst sets a Markdown result as a paragraph of its
    own, which broke the sentence around it into lines in JupyterLab."""
    if spec == "md":
        text = str(value)
        return Shown(re.sub(r"[*`]", "", text), markdown=text if MARKUP.search(text) else None)
    return Shown(format(value, spec) if spec else str(value))


class Glued(dict):
    """The values a chapter glued, by name; ``v["key:spec"]`` is one of them, formatted."""

    def __getitem__(self, item: str) -> Shown:
        key, spec = parse(f'v["{item}"]')
        if key not in self:
            raise KeyError(f"{key!r} is not computed yet: run the cells above this one")
        return shown(dict.__getitem__(self, key), spec)


GLUED = Glued()
"""This kernel's glued values: a notebook binds it as ``v``."""


def glue_values(values: dict[str, Any]) -> dict[str, Any]:
    """Glue (myst-nb) every value for the page's prose to quote, hidden where computed, and
    add it to :data:`GLUED`.

    numpy scalars become Python numbers first: their numpy-2 reprs are not numbers to a
    format spec in the book. Returns the converted values."""
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
    # A Markdown sentence is kept as its source: ``v["key:md"]`` formats the text, not the
    # display object (whose str() is "<IPython.core.display.Markdown object>").
    GLUED.update({name: getattr(value, "_repr_markdown_", lambda: value)()
                  for name, value in values.items()})
    return values


def glued_in(nb: Any) -> dict[str, Any]:
    """The values an executed notebook glued (read back from their text), by name."""
    found = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            data = output.get("data", {})
            markdown = data.get("application/papermill.record/text/markdown")
            if name and markdown is not None:  # a Markdown sentence: its source, not its repr
                found[name] = markdown
                continue
            text = data.get("application/papermill.record/text/plain")
            if name and text is not None:
                try:
                    found[name] = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    found[name] = text
    return found


def with_user_expressions(nb: Any) -> Any:
    """``nb`` with each Markdown cell's ``{eval}`` results stored as jupyterlab-myst stores
    them (``metadata.user_expressions``), from the values the notebook glued; an expression
    that cannot be read stores an error, as a kernel would."""
    values = Glued(glued_in(nb))
    for cell in nb.cells:
        expressions = ROLE.findall(cell.source) if cell.cell_type == "markdown" else []
        if not expressions:
            continue
        stored = []
        for expression in expressions:
            try:
                key, spec = parse(expression)
                value = values[f"{key}:{spec}" if spec else key]
                data = {"text/plain": value.text}
                if value.markdown is not None:  # as a kernel returns it (Shown._repr_markdown_)
                    data["text/markdown"] = value.markdown
                result = {"status": "ok", "metadata": {}, "data": data}
            except (ValueError, KeyError, TypeError) as err:
                result = {"status": "error", "ename": type(err).__name__, "evalue": str(err),
                          "traceback": []}
            stored.append({"expression": expression, "result": result})
        cell.metadata["user_expressions"] = stored
    return nb
