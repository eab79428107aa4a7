"""The package's layout rules, checked on the source: one shape for every chapter, imports that
only run downward, one concept-probe fit and one enumeration of configurations."""

import ast
import re
from pathlib import Path

import pytest

from ipta.chapters import CHAPTERS, chapter_module

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ipta"
BOOK_MACHINERY = {"runner.py", "cli.py", "chapters.py", "notebook.py", "figures.py"}


def _imports(path: Path) -> set[str]:
    """Every module name a file imports (``from a import b`` counts as a and a.b)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def _core_modules() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py")
            if p.name != "chapter.py" and p.name not in BOOK_MACHINERY]


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_modules_never_import_a_chapter_module(path):
    chapter_imports = {m for m in _imports(path) if m.endswith(".chapter")}
    assert not chapter_imports, f"{path.name} imports {chapter_imports}"


@pytest.mark.parametrize("notebook", sorted(CHAPTERS))
def test_a_notebook_imports_only_its_own_chapter_module_from_ipta(notebook):
    source = (ROOT / "notebooks" / f"{notebook}.py").read_text()
    imported = {m for m in _imports_from_text(source) if m.split(".")[0] == "ipta"}
    package = CHAPTERS[notebook].rsplit(".", 1)[0]
    assert imported == {package, f"{package}.chapter"}
    heavy = {m.split(".")[0] for m in _imports_from_text(_without_solutions(notebook))} & {
        "numpy", "scipy", "sklearn", "torch", "seaborn"}
    assert not heavy, f"{notebook} computes with {heavy}: that belongs in {CHAPTERS[notebook]}"


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
    tmp = ast.parse(source)
    names = set()
    for node in ast.walk(tmp):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("notebook", sorted(CHAPTERS))
def test_every_chapter_module_has_the_same_shape(notebook):
    """Config, setup, run and Result under the same names; tables and figures by prefix."""
    module = chapter_module(notebook)
    for name in ("Config", "setup", "run", "Result"):
        assert hasattr(module, name), f"{module.__name__} lacks {name}"
    public = [n for n, v in vars(module).items()
              if callable(v) and getattr(v, "__module__", "") == module.__name__
              and not n.startswith("_")]
    assert any(n.startswith("table_") for n in public)
    assert any(n.startswith("figure_") for n in public)
    assert not [n for n in public if n.startswith("plot_")], "figures are named figure_*"


def _definitions(pattern: str) -> list[str]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{path.relative_to(ROOT)}:{i}")
    return found


def _calls(name: str) -> list[str]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            func = getattr(node, "func", None)
            if isinstance(node, ast.Call) and getattr(func, "id", getattr(func, "attr", "")) == name:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_concept_probes_are_fitted_in_one_place():
    """Only the one concept-probe fit and the simulations' latent probes call LogisticRegression."""
    sites = _calls("LogisticRegression")
    assert {s.split(":")[0] for s in sites} == {"ipta/probing/probes.py",
                                                 "ipta/simulations/sweep.py"}, sites
    assert len([s for s in sites if s.startswith("ipta/probing/")]) == 1


def test_the_latent_model_is_written_once():
    for name in ("all_configs", "sample_latents", "joint_probs", "erdos_renyi_dag",
                 "invertibility_error_X"):
        assert len(_definitions(rf"^def {name}\(")) == 1, name


def test_no_plotting_outside_chapter_modules():
    for path in _core_modules():
        assert not {m for m in _imports(path) if m.split(".")[0] in ("matplotlib", "seaborn")}, path
