"""Specification of ipta.sphinx_ext: the book refuses to build without its executed chapters,
says which profile built them, and one setting turns on the repository and launch buttons."""

import json
import types
from pathlib import Path

import pytest

from ipta import sphinx_ext

ROOT = Path(__file__).resolve().parents[1]


def test_the_book_refuses_to_build_without_executed_chapters(tmp_path, capsys):
    """The refusal is the first line on stderr, before Sphinx's traceback of it."""
    from sphinx.errors import ExtensionError

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_theory.py").write_text("")
    app = types.SimpleNamespace(srcdir=str(tmp_path))
    config = types.SimpleNamespace(myst_substitutions={})
    with pytest.raises(ExtensionError, match=r"01_theory have not been executed: run `ipta run`"):
        sphinx_ext._on_config(app, config)
    assert capsys.readouterr().err == ("ipta: error: the chapters 01_theory have not been "
                                       "executed: run `ipta run` (or `make book`) before "
                                       "building the site\n")


def test_the_intro_says_which_profile_built_the_chapters():
    assert "all built with the `default` profile" in sphinx_ext.built_with(
        {"01_theory": "default", "02_simulations": "default"})
    mixed = sphinx_ext.built_with({"01_theory": "default", "02_simulations": "smoke"})
    assert "mixes profiles" in mixed and "02_simulations with `smoke`" in mixed


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


def _executed(root, chapter, text):
    folder = root / "book" / "executed"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{chapter}.ipynb").write_text(text)


def test_each_chapters_profile_is_read_from_its_executed_notebook_or_is_none(tmp_path):
    (tmp_path / "notebooks").mkdir()
    for chapter in ("01_a", "02_b", "03_c", "04_d"):
        (tmp_path / "notebooks" / f"{chapter}.py").write_text("")
    papermill = {"metadata": {"papermill": {"parameters": {"profile": "smoke"}}}}
    _executed(tmp_path, "01_a", json.dumps(papermill))
    _executed(tmp_path, "02_b", json.dumps({"metadata": {"papermill": {"parameters": {}}}}))
    _executed(tmp_path, "03_c", "{")
    assert sphinx_ext.chapter_profiles(tmp_path) == {"01_a": "smoke", "02_b": "default",
                                                     "03_c": None, "04_d": None}


def test_without_a_repository_url_no_button_options_are_set():
    assert sphinx_ext.repository_options("") == {}
    assert sphinx_ext.repository_options("https://x.org/r", "dev")["repository_branch"] == "dev"


def test_the_extension_registers_its_setting_role_and_styles_and_is_safe_in_parallel():
    app = types.SimpleNamespace(values=[], hooks=[], roles=[], css=[])
    app.add_config_value = lambda *args: app.values.append(args)
    app.connect = lambda *args: app.hooks.append(args)
    app.add_role = lambda name, role, override: app.roles.append((name, role, override))
    app.add_css_file = app.css.append
    meta = sphinx_ext.setup(app)
    assert app.values == [("ipta_repository_url", "", "html")]
    assert app.hooks == [("config-inited", sphinx_ext._on_config)]
    assert app.roles == [("eval", sphinx_ext.eval_from_glue, True)]
    assert app.css == ["ipta.css"] and (sphinx_ext.STATIC / "ipta.css").is_file()
    assert meta == {"parallel_read_safe": True, "parallel_write_safe": True}
