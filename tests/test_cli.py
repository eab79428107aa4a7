"""The ``ipta`` command: exit codes and one-line messages, never a traceback; parameters are
checked before any cell runs; the cache commands report and tidy."""

from pathlib import Path

import numpy as np
import pytest

from ipta import cache, cli, runner
from test_runner import NOTEBOOK, project  # noqa: F401 (the runner's fixture project)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_cli_exits_non_zero_naming_the_notebook_and_cell(project, capsys):  # noqa: F811
    code = cli.main(["--root", str(project), "run", "99", "-p", "fail", "true"])
    err = capsys.readouterr().err
    assert code == 1
    assert "99_fixture failed in code cell 3" in err and "ValueError: boom" in err


def test_the_cli_refuses_a_bad_parameter_with_exit_code_2(project, capsys):  # noqa: F811
    code = cli.main(["--root", str(project), "run", "fixture", "-p", "n", "many"])
    assert code == 2
    assert "parameter 'n': 'many' is not an int" in capsys.readouterr().err


def test_ctrl_c_ends_with_one_line_and_exit_130(project, capsys, monkeypatch):  # noqa: F811
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_chapters", interrupted)
    assert cli.main(["--root", str(project), "run", "99_fixture"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ipta: interrupted") and "Traceback" not in err


def test_a_notebook_without_a_chapter_module_gets_a_clear_message(project, capsys):  # noqa: F811
    (project / "notebooks" / "98_mine.py").write_text(NOTEBOOK)
    assert cli.main(["--root", str(project), "run", "98_mine"]) == 2
    err = capsys.readouterr().err
    assert "notebook '98_mine' is not a chapter of this book" in err and "Traceback" not in err


def test_a_cache_variable_naming_a_file_is_refused_in_one_line_before_a_kernel_starts(
        project, capsys, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path / "afile"))
    (tmp_path / "afile").write_text("")
    monkeypatch.setattr(runner, "execute_chapter", lambda *a, **k: pytest.fail("a kernel ran"))
    assert cli.main(["--root", str(project), "run", "99_fixture"]) == 2
    err = capsys.readouterr().err
    assert err == (f"ipta: error: IPTA_CACHE_DIR='{tmp_path / 'afile'}' is not a folder; point it "
                   "at a folder (it is created if missing) or unset it\n")


def test_a_parameter_given_twice_is_refused_before_anything_runs(monkeypatch, capsys):
    monkeypatch.setattr(runner, "run_chapters", lambda *a, **k: pytest.fail("it ran"))
    argv = ["--root", str(ROOT), "run", "01_theory", "-p", "steps", "1", "-p", "steps", "2"]
    assert cli.main(argv) == 2
    assert "ipta: error: parameter 'steps' is given more than once" in capsys.readouterr().err


def test_run_hands_the_chapters_profile_and_parameters_to_the_runner(monkeypatch):
    """Names resolve to stems, no name means every chapter in order, and --allow-huge becomes
    the parameter that lifts the soft limits."""
    calls = []
    monkeypatch.setattr(runner, "run_chapters", lambda *args: calls.append(args))
    assert cli.main(["--root", str(ROOT), "run", "02", "theory", "--profile", "smoke",
                     "-p", "steps", "5", "--allow-huge"]) == 0
    assert calls[-1] == (["02_simulations", "01_theory"], ROOT, "smoke",
                         {"steps": "5", "allow_huge": "true"})
    assert cli.main(["--root", str(ROOT), "run"]) == 0
    assert calls[-1] == (runner.list_chapters(ROOT), ROOT, "default", {})


def test_params_lists_every_parameter_with_the_profiles_value(capsys):
    assert cli.main(["--root", str(ROOT), "params", "02_simulations", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("02_simulations (Config, profile smoke)\n")
    assert "  steps = 40  [" in out and "  seeds = [0, 1]  [" in out


# ---------------------------------------------------------------------------------- cache
@pytest.fixture
def toy_entry(tmp_path, monkeypatch):
    """One cache entry in a cache of its own, and its folder."""
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "cache"))
    cache.get_or_compute("toy", {"n": 7}, lambda: ({"x": np.arange(1000.0)}, {"seed": 3}),
                         code=("ipta.cache",))
    return next((cache.cache_root() / "toy").iterdir())


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_the_cache_commands_report_and_tidy(toy_entry, capsys):
    entry = toy_entry
    assert cli.main(["cache", "verify"]) == 0
    assert "1 entries checked" in capsys.readouterr().out
    _flip(entry / "arrays.npz")
    assert cli.main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"DAMAGED toy/{entry.name}: file arrays.npz does not match" in out
    assert cli.main(["cache", "verify", "--move"]) == 1 and not entry.exists()
    capsys.readouterr()
    assert cli.main(["cache", "clean"]) == 0
    assert "1 item(s) removed" in capsys.readouterr().out


def test_a_full_disk_while_publishing_is_one_line_with_the_traceback_kept(project, capsys,  # noqa: F811
                                                                          monkeypatch):
    import errno
    import re

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/book/executed/x.ipynb")

    monkeypatch.setattr(runner, "run_chapters", full)
    assert cli.main(["--root", str(project), "run", "99_fixture"]) == 1
    err = capsys.readouterr().err
    found = re.fullmatch(r"ipta: error: No space left on device: /data/book/executed/x\.ipynb; "
                         r"nothing half-done was published \(the full traceback is in (\S+)\)\n",
                         err)
    assert found, err
    assert "Traceback" in open(found.group(1)).read()


def test_a_reader_closing_the_pipe_early_gets_no_traceback():
    """`ipta params | head -1`: the rest has nowhere to go; no BrokenPipeError traceback. (The
    reading end is closed before anything is written, so every run meets the broken pipe.)"""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "ipta.cli", "--root", str(ROOT), "params"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and err == ""
