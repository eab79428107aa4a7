"""Specification of ipta.progress: bars only where asked for and never on a book page, and a
terminal line that says which cell of a running notebook papermill is at."""

import io
import json
import time

import pytest

from ipta import progress


def test_the_terminal_line_names_the_cell_and_estimates_from_the_last_run(tmp_path):
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    cells = [{"cell_type": "code", "source": "a = 1", "metadata": {"papermill": {"start_time": now}}},
             {"cell_type": "code", "source": "res = chapter.run(cfg)",
              "metadata": {"papermill": {"start_time": now}}},
             {"cell_type": "code", "source": "plot()", "metadata": {"papermill": {}}}]
    running = tmp_path / "running.ipynb"
    running.write_text(json.dumps({"cells": cells}))
    reporter = progress.NotebookProgress("04_sae", running, previous=[1.0, 100.0, 20.0],
                                         stream=io.StringIO())
    line = reporter.line()
    assert line.startswith("[ipta] 04_sae: cell 2/3 ('res = chapter.run(cfg)'), 0:00 elapsed")
    assert "about 1:59 left" in line or "about 2:00 left" in line


def test_progress_bars_are_off_when_the_runner_says_so(monkeypatch):
    monkeypatch.setenv(progress.ENV_VAR, "0")
    assert progress.bar(range(3)).disable
    monkeypatch.setenv(progress.ENV_VAR, "1")
    assert not progress.bar(range(3), file=io.StringIO()).disable
    assert progress.bar(range(3), disable=True).disable


@pytest.mark.parametrize("env,asked,wanted", [("1", True, True), ("1", False, False),
                                              ("0", True, False), (None, True, True)])
def test_a_bar_is_wanted_when_asked_for_unless_the_runner_switched_bars_off(
        monkeypatch, env, asked, wanted):
    if env is None:
        monkeypatch.delenv(progress.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(progress.ENV_VAR, env)
    assert progress.wanted(asked) is wanted


def test_with_bars_off_every_librarys_auto_bar_becomes_the_plain_one(monkeypatch):
    import tqdm.auto
    import tqdm.autonotebook
    import tqdm.std

    for module in (tqdm.auto, tqdm.autonotebook):  # restored after the test
        monkeypatch.setattr(module, "tqdm", module.tqdm)
        monkeypatch.setattr(module, "trange", module.trange)
    monkeypatch.setattr(tqdm.auto, "tqdm", object)
    monkeypatch.setenv(progress.ENV_VAR, "1")
    progress.silence_notebook_bars()
    assert tqdm.auto.tqdm is object, "bars on: nothing is replaced"
    monkeypatch.setenv(progress.ENV_VAR, "0")
    progress.silence_notebook_bars()
    assert tqdm.auto.tqdm is tqdm.autonotebook.tqdm is tqdm.std.tqdm
    assert tqdm.auto.trange is tqdm.std.trange


def _executed(path, profile, durations, injected=True):
    cells = [{"cell_type": "markdown", "source": "# title", "metadata": {}}]
    if injected:
        cells.append({"cell_type": "code", "source": "profile = 'x'",
                      "metadata": {"tags": ["injected-parameters"],
                                   "papermill": {"duration": 9.0}}})
    cells += [{"cell_type": "code", "source": "", "metadata": {"papermill": {"duration": d}}}
              for d in durations]
    path.write_text(json.dumps({"cells": cells, "metadata": {
        "papermill": {"parameters": {"profile": profile}}}}))


def test_previous_durations_are_the_code_cells_seconds_of_a_run_of_the_same_profile(tmp_path):
    path = tmp_path / "last.ipynb"
    _executed(path, "smoke", [1.5, None, 3.0])
    assert progress.previous_durations(path, "smoke") == [1.5, 0.0, 3.0]
    assert progress.previous_durations(path, "default") is None
    assert progress.previous_durations(tmp_path / "absent.ipynb", "smoke") is None
    path.write_text("{")
    assert progress.previous_durations(path, "smoke") is None


def test_before_papermill_writes_the_notebook_the_line_says_starting(tmp_path):
    reporter = progress.NotebookProgress("01_theory", tmp_path / "absent.ipynb",
                                         stream=io.StringIO())
    assert reporter.line() == "[ipta] 01_theory: starting, 0:00 elapsed"


def test_off_a_terminal_the_line_is_printed_plainly_every_few_seconds(tmp_path):
    stream = io.StringIO()
    with progress.NotebookProgress("01_theory", tmp_path / "absent.ipynb", every=0.01,
                                   stream=stream):
        deadline = time.monotonic() + 5.0
        while stream.getvalue().count("\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 2 and set(lines) == {"[ipta] 01_theory: starting, 0:00 elapsed"}
    assert "\r" not in stream.getvalue()
