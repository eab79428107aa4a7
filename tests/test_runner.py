"""The notebook runner: parameters are injected, bad ones refused before any computation,
and a failing cell is named (the `ipta` command that drives it: tests/test_cli.py)."""

import sys
import textwrap
from dataclasses import dataclass

import jupytext
import pytest

from ipta import chapters, runner
from ipta.config import Config, ConfigError, param

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class FixtureConfig(Config):
    n: int = param(2, "a count", low=1)
    fail: bool = param(False, "raise in the third code cell")
    die: bool = param(False, "kill the kernel in the fourth code cell")
    folder: str | None = param(None, "a folder", path=True)
    figure: bool = param(False, "save a figure in the last code cell")

    PROFILES = {"smoke": {"n": 1}}




NOTEBOOK = textwrap.dedent('''\
    # %% [markdown]
    # # Fixture

    # %% tags=["parameters"]
    profile = "default"
    n = None
    fail = None
    die = None
    figure = None

    # %%
    import pathlib
    pathlib.Path("started").write_text("yes")
    print(f"profile={profile} n={n!r} type={type(n).__name__}")

    # %%
    if fail:
        raise ValueError("boom")

    # %%
    import os
    if die:
        os.kill(os.getpid(), 9)
    print("cwd", os.getcwd(), "cache", os.environ.get("IPTA_CACHE_DIR"))

    # %%
    if figure:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from ipta.figures import save_figure
        save_figure("fixture-figure", plt.figure())
        if n == 99:
            raise RuntimeError("after the figure was saved")
    ''')


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "_config.yml").write_text("title: fixture\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "99_fixture.py").write_text(NOTEBOOK)
    package = tmp_path / "src" / "fixture_chapter"  # a chapter package whose Config is above
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for room in ("config", "chapter"):
        (package / f"{room}.py").write_text(f"from {__name__} import FixtureConfig as Config\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setitem(chapters.CHAPTERS, "99_fixture", "fixture_chapter")
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("fixture_chapter")]:
        del sys.modules[name]


def _outputs(path):
    nb = jupytext.read(path)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def test_the_profile_and_typed_parameters_reach_the_notebook(project):
    [res] = runner.run_chapters(["99_fixture"], project, "smoke", {"n": "3"})
    assert res.path == project / "book" / "executed" / "99_fixture.ipynb"
    assert "profile=smoke n=3 type=int" in _outputs(res.path)
    tags = [c.metadata.get("tags", []) for c in jupytext.read(res.path).cells]
    assert ["parameters", "remove-cell"] in tags, "the default parameters cell is not hidden in the book"
    assert ["injected-parameters"] in tags


def test_a_bad_value_is_refused_before_any_cell_runs(project):
    with pytest.raises(ConfigError, match=r"'n': 0 is out of range; allowed: int >= 1"):
        runner.run_chapters(["99_fixture"], project, "smoke", {"n": "0"})
    assert not (project / "notebooks" / "started").exists()


def test_an_unknown_parameter_is_refused_with_the_known_ones(project):
    with pytest.raises(ConfigError, match=r"unknown parameter 'm'.*known parameters: allow_huge, die, fail, figure, folder, n"):
        runner.run_chapters(["99_fixture"], project, "smoke", {"m": "1"})


def test_a_failing_cell_is_named_and_no_executed_notebook_is_left_for_the_book(project):
    with pytest.raises(runner.RunError) as err:
        runner.run_chapters(["99_fixture"], project, "default", {"fail": "true"})
    message = str(err.value)
    assert "notebook 99_fixture failed in code cell 3" in message
    assert "ValueError: boom" in message
    assert not (project / "book" / "executed" / "99_fixture.ipynb").exists()
    assert (project / "_build" / "failed" / "99_fixture.ipynb").exists()


def test_notebooks_are_named_by_stem_number_or_name(project):
    for name in ("99_fixture", "99", "fixture", "notebooks/99_fixture.py"):
        assert runner.resolve_chapter(name, project) == "99_fixture"
    with pytest.raises(ConfigError, match="choose one of 99_fixture"):
        runner.resolve_chapter("theory", project)


def test_progress_bar_redraws_are_dropped_from_the_book_but_real_warnings_stay():
    import nbformat

    cell = nbformat.v4.new_code_cell("train()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=(
            "\rtraining:   0%|          | 0/600 [00:00<?, ?it/s]"
            "\rtraining: 100%|##########| 600/600 [00:01<00:00, 635.32it/s]\n")),
        nbformat.v4.new_output("stream", name="stderr", text=(  # a postfix after the rate
            "\rSAE topk:   9%|▉         | 47/500 [00:01<00:08, 54.74it/s, loss=291]\n"
            "\rwindows: 120it [00:03, 38.2it/s]\n")),
        nbformat.v4.new_output("stream", name="stderr", text=(
            "/x/tqdm/auto.py:21: TqdmWarning: IProgress not found.\n"
            "  from .autonotebook import tqdm as notebook_tqdm\n")),
        nbformat.v4.new_output("stream", name="stderr", text="UserWarning: 3 pairs are identical\n"),
        nbformat.v4.new_output("stream", name="stdout", text="accuracy 0.91\n"),
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    kept = [o["text"] for o in runner.drop_progress_output(nb).cells[0].outputs]
    assert kept == ["UserWarning: 3 pairs are identical\n", "accuracy 0.91\n"]
    assert nb.metadata["ipta"]["progress_lines_dropped"] == 5


def test_a_dead_kernel_names_the_notebook_and_the_cell_and_publishes_nothing(project):
    with pytest.raises(runner.RunError, match=r"kernel running notebook 99_fixture died in code "
                                              r"cell 4 \('import os'\).*nothing was published"):
        runner.run_chapters(["99_fixture"], project, "smoke", {"die": "true"})
    assert not (project / "book" / "executed" / "99_fixture.ipynb").exists()


def test_relative_paths_mean_the_users_directory_not_the_kernels(project, monkeypatch, tmp_path):
    user_dir = tmp_path / "elsewhere"
    (user_dir / "pairs").mkdir(parents=True)
    monkeypatch.chdir(user_dir)
    monkeypatch.setenv("IPTA_CACHE_DIR", "rel-cache")
    per_chapter = runner.validate_params(["99_fixture"], "smoke", {"folder": "pairs"})
    assert per_chapter["99_fixture"]["folder"] == str(user_dir / "pairs")
    [res] = runner.run_chapters(["99_fixture"], project, "smoke", {})
    out = _outputs(res.path)
    assert f"cache {user_dir / 'rel-cache'}" in out, out  # not notebooks/rel-cache


def test_a_killed_runs_temporary_notebook_is_removed_by_the_next_run(project):
    executed = project / "book" / "executed"
    executed.mkdir(parents=True)
    stale = executed / ".99_fixture.999999999.running.ipynb"  # no such process
    stale.write_text("{}")
    runner.run_chapters(["99_fixture"], project, "smoke", {})
    assert not stale.exists()


def test_a_progress_bar_drawn_as_a_widget_is_dropped_and_counted():
    import nbformat

    bar = nbformat.v4.new_output("display_data", data={
        runner.WIDGET: {"model_id": "x", "version_major": 2, "version_minor": 0},
        "text/plain": "Loading weights:   0%|          | 0/272 [00:00<?, ?it/s]"})
    table = nbformat.v4.new_output("display_data", data={"text/plain": "a table"})
    cell = nbformat.v4.new_code_cell("x", outputs=[bar, table])
    nb = nbformat.v4.new_notebook(cells=[cell], metadata={"widgets": {"state": {}}})
    runner.drop_progress_output(nb)
    assert cell.outputs == [table] and "widgets" not in nb.metadata
    assert nb.metadata["ipta"]["progress_lines_dropped"] == 1


SLEEPER = textwrap.dedent('''\
    # %% tags=["parameters"]
    profile = "default"

    # %%
    import os, pathlib, time
    pathlib.Path("kernel.pid").write_text(str(os.getpid()))
    time.sleep(120)
    ''')

DRIVER = textwrap.dedent('''\
    import signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if our parent ignored it
    sys.path.insert(0, sys.argv[1])
    from ipta import chapters, cli
    chapters.CHAPTERS["97_sleeper"] = "sleeper_chapter"
    sys.exit(cli.main(["--root", sys.argv[2], "run", "97_sleeper"]))
    ''')


@pytest.mark.parametrize("how,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_or_sigterm_in_a_cell_ends_with_one_line_no_temporaries_and_no_kernel(
        tmp_path, how, code):
    """A real run stopped mid-cell, Ctrl-C (SIGINT to the terminal's process group) or SIGTERM
    (a scheduler): one line on stderr (the kernel's tracebacks about its closed sockets go to
    its log), the temporary notebook removed, the kernel stopped, nothing published."""
    import os
    import signal
    import subprocess
    import time

    (tmp_path / "_config.yml").write_text("title: sleeper\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "97_sleeper.py").write_text(SLEEPER)
    package = tmp_path / "src" / "sleeper_chapter"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "config.py").write_text("from dataclasses import dataclass\n"
                                       "from ipta.config import Config as Base\n"
                                       "@dataclass(frozen=True)\nclass Config(Base):\n    pass\n")
    (tmp_path / "driver.py").write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "src"),
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    pid_file = tmp_path / "notebooks" / "kernel.pid"
    deadline = time.monotonic() + 120
    while not pid_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert pid_file.exists(), proc.communicate()
    time.sleep(0.5)
    kernel = int(pid_file.read_text())
    if how == "SIGINT":
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends
    else:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.count("\n") == 1 and err.startswith("ipta: interrupted"), err
    executed = tmp_path / "book" / "executed"
    assert not list(executed.glob("*")), "a temporary or a result was left"
    for _ in range(50):
        try:
            os.kill(kernel, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the kernel {kernel} still runs")


def test_figures_are_published_beside_the_notebook_only_when_every_cell_ran(project):
    """A run saves its figures in a private folder; they join book/executed/figures/ with the
    notebook, and a failed run leaves neither."""
    executed = project / "book" / "executed"
    with pytest.raises(runner.RunError):
        runner.run_chapters(["99_fixture"], project, "smoke", {"figure": "true", "n": "99"})
    assert not (executed / "figures").exists() and not list(executed.glob(".*figures"))
    runner.run_chapters(["99_fixture"], project, "smoke", {"figure": "true"})
    assert [p.name for p in (executed / "figures").iterdir()] == ["fixture-figure.png"]
    assert not list(executed.glob(".*"))
