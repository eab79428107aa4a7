"""Specification of ipta.exercises and the chapters' checked exercises: every "Write it"
exercise has a check; a stub left as it is gets "not done yet" (never ✓), a right answer ✓,
a wrong one a one-line Wrong. (The book runs every solution through its check.)"""

import re
from pathlib import Path

import jupytext
import pytest

from ipta import exercises
from ipta.chapters import chapter_module
from ipta.classroom import CHECKED_STUB, student_version

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("01_theory", "02_simulations", "03_llm_probing", "04_sae")


def _write_it_labels(chapter):
    text = (ROOT / "notebooks" / f"{chapter}.py").read_text()
    return re.findall(r"```\{exercise\} Write it[^\n]*\n# :label: (\S+)", text)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_write_it_exercise_has_a_check_and_a_check_cell(chapter):
    module = chapter_module(chapter)
    labels = _write_it_labels(chapter)
    assert labels and sorted(labels) == sorted(module.EXERCISES)
    text = (ROOT / "notebooks" / f"{chapter}.py").read_text()
    for label in labels:
        assert f'chapter.check_exercise("{label}", answer, res)' in text


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_students_untouched_stub_gets_not_done_yet_and_never_a_tick(chapter, capsys):
    """The student copy's stub, run as it is with the check cell after it."""
    module = chapter_module(chapter)
    student = student_version(jupytext.read(ROOT / "notebooks" / f"{chapter}.py"))
    cells = student.cells
    checks = [i for i, c in enumerate(cells) if "check_exercise(" in c.source]
    assert len(checks) == len(module.EXERCISES)
    for i in checks:
        assert cells[i - 1].source == CHECKED_STUB
        namespace = {"chapter": module, "res": None, "cfg": None}
        exec(cells[i - 1].source + cells[i].source, namespace)
        out = capsys.readouterr().out
        assert "not done yet. Set `answer` to a dict" in out and "✓" not in out


def test_a_right_answer_ticks_and_a_wrong_one_says_what_differs(theory_smoke, capsys):
    from ipta.theory import chapter

    right = chapter.exercise_fewest_samples(theory_smoke)
    assert chapter.check_exercise("theory-ex-ess", right, theory_smoke) is None  # no value shown
    assert capsys.readouterr().out == "✓ theory-ex-ess: your answer matches ipta's.\n"
    with pytest.raises(exercises.Wrong, match=r"answer\['ess'\] is .*differs from ipta's"):
        chapter.check_exercise("theory-ex-ess", {**right, "ess": right["ess"] + 1}, theory_smoke)
    with pytest.raises(exercises.Wrong, match="answer's keys are"):
        chapter.check_exercise("theory-ex-ess", {"ess": 1.0}, theory_smoke)
    with pytest.raises(exercises.Wrong, match="should be a dict with .* not a list"):
        chapter.check_exercise("theory-ex-ess", [1, 2], theory_smoke)
    with pytest.raises(exercises.Wrong, match=r"answer\['r2'\] should be a number"):
        chapter.check_exercise("theory-ex-ess", {**right, "r2": "high"}, theory_smoke)
    assert exercises.Wrong("x")._render_traceback_() == ["Not yet: x"]


def test_the_simulations_checks_accept_numpy_keys_as_the_solution_builds_them(simulations_smoke,
                                                                             capsys):
    from ipta.simulations import chapter

    runs = simulations_smoke.runs
    left = runs[runs.panel == "left"]
    answer = (left.trained - left.untrained).groupby(left.n_observed).mean().to_dict()
    chapter.check_exercise("sim-ex-gain-by-m", answer, simulations_smoke)
    assert capsys.readouterr().out.startswith("✓ sim-ex-gain-by-m")
    worst = runs.assign(gap=runs.bayes_masked - runs.trained).nlargest(3, "gap")
    answer = {(r.panel, r.graph, r.n_observed, r.seed): r.gap for r in worst.itertuples()}
    chapter.check_exercise("sim-ex-ceiling", answer, simulations_smoke)
    assert capsys.readouterr().out.startswith("✓ sim-ex-ceiling")
    wrong = dict(answer)
    wrong.popitem()
    with pytest.raises(exercises.Wrong, match="answer's keys are"):
        chapter.check_exercise("sim-ex-ceiling", wrong, simulations_smoke)


def test_an_unknown_label_names_the_checked_ones():
    from ipta.sae import chapter

    with pytest.raises(KeyError, match="no check for exercise 'sae-ex-x'; checked: sae-ex-gain"):
        chapter.check_exercise("sae-ex-x", None, None)
