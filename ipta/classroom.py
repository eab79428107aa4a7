"""The classroom edition: student notebooks without the exercises' solutions.

Each chapter notebook ends with exercises (``{exercise}`` directives of sphinx-exercise). A
solution is *gated*: the cells from a markdown cell opening ``{solution-start}`` to the one
holding ``{solution-end}``, so that its code cells run with the rest of the notebook and a broken
solution fails the book's build. :func:`write_student_notebooks` drops those cells and leaves a
stub in their place: a markdown cell for the answer and an empty code cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

START, END = "{solution-start}", "{solution-end}"
BOOK_NOTE = ("Solutions are folded: try first, then click to compare. Each one ran when this "
             "page was built.")
"""The sentence that opens each chapter's exercises in the book (and the full notebooks)."""
STUDENT_NOTE = ("Under each exercise a cell is left for your answer and one for your code "
                "(`res`, `cfg` and `chapter` are defined above); where a check cell follows, "
                "it says whether your `answer` matches ipta's. The solutions are in the book.")
"""What a student copy says in its place: its solutions are removed, not folded."""
STUDENT_PROFILE = "classroom"
"""The profile a student notebook runs by default: each chapter in a couple of minutes, and
the cache that ``ipta run --profile classroom`` fills beforehand."""
ANSWER_STUB = "**Your answer.** (Write your prediction or your argument here.)"
CODE_STUB = "# Your code here: `res`, `cfg` and `chapter` are defined above.\n"
CHECKED_STUB = ("# Your code here: `res`, `cfg` and `chapter` are defined above. Put your result in\n"
                "# `answer` (see the exercise); the cell below checks it.\n"
                "answer = None\n")
"""The stub of an exercise whose next cell checks ``answer`` (:mod:`ipta.exercises`)."""


def solution_spans(nb: Any) -> list[tuple[int, int]]:
    """(first, last) cell indices of each gated solution, inclusive."""
    spans, start = [], None
    for i, cell in enumerate(nb.cells):
        source = cell.source if cell.cell_type == "markdown" else ""
        if START in source:
            if start is not None:
                raise ValueError(f"cell {i}: a solution starts inside the one at cell {start}")
            start = i
        if END in source:
            if start is None:
                raise ValueError(f"cell {i}: a solution ends that never started")
            spans.append((start, i))
            start = None
    if start is not None:
        raise ValueError(f"cell {start}: a solution is never closed with {END}")
    return spans


def student_version(nb: Any) -> Any:
    """A copy of ``nb`` with every gated solution replaced by an answer stub, outputs cleared,
    the exercises' note speaking to a student, and the ``classroom`` profile as the default."""
    import copy

    import nbformat

    out = copy.deepcopy(nb)
    cells, spans, i = [], solution_spans(nb), 0
    for first, last in spans:
        cells += out.cells[i:first]
        checked = last + 1 < len(out.cells) and "check_exercise(" in out.cells[last + 1].source
        cells += [nbformat.v4.new_markdown_cell(ANSWER_STUB),
                  nbformat.v4.new_code_cell(CHECKED_STUB if checked else CODE_STUB)]
        i = last + 1
    cells += out.cells[i:]
    for cell in cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if "parameters" in cell.metadata.get("tags", []):
                cell.source = _with_profile(cell.source, STUDENT_PROFILE)
        else:
            cell.source = cell.source.replace(BOOK_NOTE, STUDENT_NOTE)
    out.cells = cells
    out.metadata.pop("jupytext", None)
    return out


def _with_profile(source: str, profile: str) -> str:
    """A parameters cell's source with ``profile`` as its default profile."""
    import re

    new, count = re.subn(r'^profile: str = "[a-z]+"', f'profile: str = "{profile}"', source,
                         count=1, flags=re.M)
    if count != 1:
        raise ValueError("the parameters cell has no 'profile: str = \"...\"' line")
    return new


def write_student_notebooks(root: Path, out_dir: Path) -> list[Path]:
    """Write each chapter's student notebook (``.ipynb``) to ``out_dir``; return the paths."""
    import jupytext

    from ipta.runner import list_chapters

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for chapter in list_chapters(root):
        nb = jupytext.read(root / "notebooks" / f"{chapter}.py")
        path = out_dir / f"{chapter}.ipynb"
        jupytext.write(student_version(nb), path, fmt="ipynb")
        written.append(path)
    return written
