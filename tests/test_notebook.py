"""Specification of ipta.notebook: what every chapter notebook calls first. The settings are
validated from the profile, the page's parameters and the notebook's own parameters cell, and
shown as one table; the parameters cell itself is generated from the chapter's Config."""


from ipta.chapters import CHAPTERS, config_class
from ipta.notebook import (given_parameters, parameters_cell_source,
                           run_settings_html, run_settings_markdown, run_settings_rows, setup,
                           setup_for)
from ipta.simulations.config import Config as SimulationConfig


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


def test_every_line_of_the_generated_cell_holds_one_equals_sign_so_papermill_reads_it():
    """A comment's '>=' or '=' would make papermill skip the parameter: they are replaced."""
    for chapter in CHAPTERS:
        for line in parameters_cell_source(config_class(chapter)).splitlines()[2:]:
            assert line.count("=") == 1, line
    assert "\u2265" in parameters_cell_source(SimulationConfig)  # 'int >= 1' became 'int ≥ 1'


def test_setup_takes_the_profile_then_params_then_the_notebooks_own_values():
    cfg = setup(SimulationConfig, "smoke", {"steps": 7, "lr": 0.01}, show=False,
                namespace={"steps": 9, "seeds": None, "unrelated": 3})
    assert cfg == SimulationConfig.for_profile("smoke", steps=9, lr=0.01)


def test_a_chapters_setup_is_the_shared_one_bound_to_its_config():
    chapter_setup = setup_for(SimulationConfig)
    assert chapter_setup("smoke", {"steps": 3}, show=False) == \
        SimulationConfig.for_profile("smoke", steps=3)


def test_the_settings_table_lists_the_profile_every_parameter_and_the_software():
    import ipta

    cfg = SimulationConfig.for_profile("smoke")
    rows = run_settings_rows(cfg, "smoke")
    assert rows[0] == ("profile", "smoke")
    assert rows[1:1 + len(cfg.to_dict())] == [(k, repr(v)) for k, v in cfg.to_dict().items()]
    assert [k for k, _ in rows[-4:]] == ["ipta", "torch", "python", "run at"]
    assert ("ipta", ipta.__version__) in rows


def test_the_settings_table_is_one_markdown_row_per_setting():
    lines = run_settings_markdown([("profile", "smoke"), ("steps", "40")]).splitlines()
    assert lines[0].startswith("**Run settings**")
    assert lines[2:] == ["| setting | value |", "|---|---|", "| `profile` | `smoke` |",
                         "| `steps` | `40` |"]


def test_the_html_table_escapes_values_and_names_the_profile():
    page = run_settings_html([("template", "<b>{word}</b> & co")], "smoke")
    assert "<code>&lt;b&gt;{word}&lt;/b&gt; &amp; co</code>" in page
    assert "<b>{word}" not in page
    assert "Run settings: profile <code>smoke</code>" in page
