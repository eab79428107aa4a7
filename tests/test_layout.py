"""The package's layout rules, checked on the source: every chapter package has the same rooms
and the same contract, imports only run downward, shared pieces live below the chapters, and
tests mirror modules."""

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from ipta.chapters import CHAPTERS, chapter_module

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ipta"
BOOK_MACHINERY = {"runner.py", "cli.py", "chapters.py", "notebook.py", "figures.py",
                  "classroom.py", "sphinx_ext.py"}
CHAPTER_PACKAGES = sorted(p.rsplit(".", 1)[1] for p in CHAPTERS.values())
LONG_MODULES = {"ipta/sae/train.py": "the one training loop, read top to bottom"}
"""Modules allowed past :data:`MAX_LINES`, with the reason."""
MAX_LINES = 450


def _imports(path: Path) -> set[str]:
    """Every module name a file imports (``from a import b`` counts as a and a.b), relative
    imports resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names |= {base} | {f"{base}.{a.name}" for a in node.names}
    return names


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _core_modules() -> list[Path]:
    return [p for p in _modules() if p.name != "chapter.py" and p.name not in BOOK_MACHINERY]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", _core_modules(), ids=_rel)
def test_core_modules_never_import_a_chapter_module(path):
    chapter_imports = {m for m in _imports(path) if m.endswith(".chapter")}
    assert not chapter_imports, f"{path.name} imports {chapter_imports}"


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_no_chapter_package_imports_another(path):
    parts = path.relative_to(PACKAGE).parts
    own = parts[0] if len(parts) > 1 and parts[0] in CHAPTER_PACKAGES else None
    others = {m for m in _imports(path) if m.split(".")[:1] == ["ipta"] and len(m.split(".")) > 1
              and m.split(".")[1] in CHAPTER_PACKAGES and m.split(".")[1] != own}
    if path.name in BOOK_MACHINERY:
        return  # the runner and the CLI sit above every chapter
    assert not others, f"{_rel(path)} imports another chapter's {sorted(others)}"


@pytest.mark.parametrize("name", CHAPTER_PACKAGES)
def test_every_chapter_package_has_the_same_rooms(name):
    folder = PACKAGE / name
    assert {"__init__.py", "config.py", "chapter.py"} <= {p.name for p in folder.glob("*.py")}
    config = importlib.import_module(f"ipta.{name}.config")
    chapter = importlib.import_module(f"ipta.{name}.chapter")
    assert config.Config.__module__ == f"ipta.{name}.config"
    assert chapter.Config is config.Config, "chapter.py re-exports the config module's Config"


def _own(module, name):
    """``name`` as defined in ``module`` itself (an imported name does not count)."""
    value = getattr(module, name, None)
    assert value is not None, f"{module.__name__} lacks {name}"
    assert getattr(value, "__module__", None) == module.__name__ or name == "setup", \
        f"{module.__name__}.{name} is imported, not defined there"
    return value


def _params(func) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(func).parameters.values()]


@pytest.mark.parametrize("notebook", sorted(CHAPTERS))
def test_every_chapter_module_keeps_one_contract(notebook):
    """setup, run, describe and glue_numbers with the same signatures; tables, figures and
    readings named by prefix and defined in the chapter module."""
    module = chapter_module(notebook)
    empty = inspect.Parameter.empty
    setup = _own(module, "setup")
    assert _params(setup) == [("profile", "default"), ("params", None), ("show", True),
                              ("namespace", None)]
    assert _params(_own(module, "run")) == [("cfg", empty), ("progress", True)]
    assert _params(_own(module, "describe")) == [("res", empty)]
    assert _params(_own(module, "glue_numbers")) == [("res", empty), ("cfg", empty)]
    assert inspect.isclass(_own(module, "Result"))
    package = module.__name__.rsplit(".", 1)[0]
    public = [n for n, v in vars(module).items()  # its own, or its package's figures module's
              if inspect.isfunction(v) and v.__module__ in (module.__name__, f"{package}.figures")
              and not n.startswith("_")]
    assert any(n.startswith("table_") for n in public)
    assert any(n.startswith("figure_") for n in public)
    for name in (n for n in public if n.startswith("reading_")):
        assert inspect.signature(getattr(module, name)).return_annotation in (str, "str"), name
    assert not [n for n in public if n.startswith(("plot_", "paper_rows", "reading"))
                and not n.startswith("reading_")], "one naming pattern: reading_*"


@pytest.mark.parametrize("notebook", sorted(CHAPTERS))
def test_a_notebook_imports_only_its_own_chapter_module_from_ipta(notebook):
    source = (ROOT / "notebooks" / f"{notebook}.py").read_text()
    imported = {m for m in _imports_from_text(source) if m.split(".")[0] == "ipta"}
    package = CHAPTERS[notebook]
    assert imported == {package, f"{package}.chapter"}
    heavy = {m.split(".")[0] for m in _imports_from_text(_without_solutions(notebook))} & {
        "numpy", "scipy", "sklearn", "torch", "seaborn"}
    assert not heavy, f"{notebook} computes with {heavy}: that belongs in {package}"


def _without_solutions(notebook: str) -> str:
    """The notebook's code outside its exercises' solutions: a solution is a student's code and
    may use numpy; the chapter's own computation may not."""
    import jupytext

    from ipta.classroom import solution_spans

    nb = jupytext.read(ROOT / "notebooks" / f"{notebook}.py")
    inside = {k for i, j in solution_spans(nb) for k in range(i, j + 1)}
    return "\n".join(c.source for k, c in enumerate(nb.cells)
                     if c.cell_type == "code" and k not in inside)


def _imports_from_text(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def _definitions(pattern: str) -> list[str]:
    found = []
    for path in _modules():
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{_rel(path)}:{i}")
    return found


def _calls(name: str) -> list[str]:
    found = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            func = getattr(node, "func", None)
            if isinstance(node, ast.Call) and getattr(func, "id", getattr(func, "attr", "")) == name:
                found.append(f"{_rel(path)}:{node.lineno}")
    return found


def test_the_concept_probe_is_fitted_in_one_shared_place():
    """Logistic regression is solved in one place below every chapter: the shared concept probe
    and the simulations' latent probes call it, and nothing in the package calls scikit-learn's
    estimator instead."""
    assert not _calls("LogisticRegression")
    sites = _calls("logistic_regression")
    assert {s.split(":")[0] for s in sites} == {"ipta/probes.py", "ipta/simulations/sweep.py"}
    assert len([s for s in sites if s.startswith("ipta/probes.py")]) == 1


def test_the_latent_model_and_the_verdict_rule_are_written_once():
    for name in ("all_configs", "sample_latents", "joint_probs", "erdos_renyi_dag",
                 "invertibility_error_X"):
        assert len(_definitions(rf"^def {name}\(")) == 1, name
    # "A beats B" is decided in ipta/stats.py alone: no chapter compares a mean with its SE.
    assert not [s for s in _definitions(r"[<>]=? *-?2 \* *\w*se\b") if "ipta/stats.py" not in s]


def test_no_plotting_outside_chapter_and_figures_modules():
    for path in _core_modules():
        if path.name == "figures.py" and path.parent.name in CHAPTER_PACKAGES:
            continue
        assert not {m for m in _imports(path) if m.split(".")[0] in ("matplotlib", "seaborn")}, path


def test_config_modules_hold_declarations_and_validation_only():
    """A config module is left out of code fingerprints (its values are keyed instead), so it
    must not compute anything a result depends on: its functions only check values."""
    for path in [PACKAGE / "config.py", *PACKAGE.glob("*/config.py")]:
        tree = ast.parse(path.read_text())
        functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert all(name.endswith(("_problem", "_check")) or name.startswith("_")
                   or name == "param" for name in functions), (path, functions)


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_modules_read_in_one_sitting(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES or _rel(path) in LONG_MODULES, f"{_rel(path)}: {lines} lines"


def _has_logic(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in tree.body)


def _mirror(path: Path) -> Path:
    """tests/test_<subpackage>_<module>.py (a package's __init__ by the package's name)."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ROOT / "tests" / f"test_{'_'.join(parts)}.py"


@pytest.mark.parametrize("path", [p for p in _modules() if _has_logic(p)], ids=_rel)
def test_every_module_with_logic_has_its_own_test_file(path):
    assert _mirror(path).is_file(), f"{_rel(path)} has no {_rel(_mirror(path))}"
