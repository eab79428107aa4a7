"""The classroom edition: every chapter has 4 to 6 exercises of the three kinds, each with a
gated solution, and the student notebooks keep no line of any solution."""

import re
from pathlib import Path

import jupytext
import pytest

from ipta import cli, runner
from ipta.classroom import ANSWER_STUB, solution_spans, student_version

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = runner.list_chapters(ROOT)


def _exercises(nb):
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return re.findall(r"```\{exercise\} ([^\n]+)\n:label: (\S+)", text)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_chapter_has_four_to_six_exercises_of_the_three_kinds_each_with_a_solution(chapter):
    nb = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    exercises = _exercises(nb)
    assert 4 <= len(exercises) <= 6, exercises
    titles = [t for t, _ in exercises]
    assert any(t.startswith("Predict") for t in titles), "no predict-then-check exercise"
    assert any(t.startswith("Write it") for t in titles), "no exercise asking for code"
    assert any(t.startswith("Discuss") for t in titles), "no discussion question"
    solved = [c.source for i, j in solution_spans(nb) for c in nb.cells[i:i + 1]]
    assert sorted(re.search(r"\{solution-start\} (\S+)", s).group(1) for s in solved) == \
        sorted(label for _, label in exercises)
    assert any("Learning goals and prerequisites" in c.source for c in nb.cells[:4])


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_notebooks_keep_no_line_of_any_solution(chapter, tmp_path, capsys):
    assert cli.main(["--root", str(ROOT), "student", str(tmp_path)]) == 0
    teacher = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    student = jupytext.read(tmp_path / f"{chapter}.ipynb")
    solution_lines = {ln.strip() for i, j in solution_spans(teacher)
                      for c in teacher.cells[i:j + 1] for ln in c.source.splitlines()
                      if len(ln.strip()) > 12 and "solution" not in ln}
    student_lines = {ln.strip() for c in student.cells for ln in c.source.splitlines()}
    assert solution_lines, "no solution found to remove"
    assert not solution_lines & student_lines
    assert sum(c.source == ANSWER_STUB for c in student.cells) == len(_exercises(teacher))
    assert len(_exercises(student)) == len(_exercises(teacher))  # the questions stay


def test_an_unclosed_solution_is_an_error():
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("```{solution-start} x\n```")])
    with pytest.raises(ValueError, match="never closed"):
        student_version(nb)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_student_notebook_runs_the_classroom_profile_and_speaks_to_a_student(chapter, tmp_path):
    """"Run all" in a student copy runs the classroom profile (the cache a teacher fills with
    `ipta run --profile classroom`), and its exercises' note says where the solutions are."""
    from ipta.classroom import BOOK_NOTE, STUDENT_NOTE

    teacher = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    student = student_version(teacher)
    [params] = [c for c in student.cells if "parameters" in c.metadata.get("tags", [])]
    assert params.source.startswith('profile: str = "classroom"  # preset')
    assert "classroom (a couple of minutes a chapter)" in params.source
    text = "\n".join(c.source for c in student.cells)
    assert BOOK_NOTE in "\n".join(c.source for c in teacher.cells)
    assert BOOK_NOTE not in text and text.count(STUDENT_NOTE) == 1
