"""Code fingerprints: a digest of the code behind a cached result (see :mod:`ipta.cache`).

The fingerprint follows the imports of the named modules within their top-level package (lazy
ones inside functions too) and hashes each module's syntax tree without its docstrings, so
editing a comment or a docstring keeps the cache while any change to code a result depends on
rebuilds it. Config modules are left out (:func:`is_config_module`): every value of theirs that
can change a result is in the key already. So are the storage modules (:data:`STORAGE_MODULES`),
which key, write, check and read entries but compute none: hardening the cache must not
retrain every SAE. How entries are stored is versioned by :data:`ipta.cache.FORMAT` instead.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from collections.abc import Iterable, Sequence
from pathlib import Path


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
    return tree


@functools.lru_cache(maxsize=None)
def _parsed(path: str, mtime_ns: int, size: int) -> tuple[str, tuple[str, ...]]:
    """(digest of the docstring-free syntax tree, absolute names this file imports)."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    imports: list[str] = []
    package = _package_of(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against this file's package
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            imports.append(base)
            imports += [f"{base}.{a.name}" for a in node.names]
    dump = ast.dump(_without_docstrings(tree), annotate_fields=False, include_attributes=False)
    return hashlib.sha256(dump.encode()).hexdigest(), tuple(imports)


def _package_of(path: str) -> str:
    """Dotted package that a source file belongs to, found by walking up ``__init__.py`` files."""
    p = Path(path).resolve()
    parts: list[str] = []
    d = p.parent
    while (d / "__init__.py").exists():
        parts.insert(0, d.name)
        d = d.parent
    return ".".join(parts)


def _source_file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


STORAGE_MODULES = frozenset({"ipta.cache", "ipta.fingerprint", "ipta.integrity"})
"""Modules that store results without computing any: left out of code fingerprints."""


def is_config_module(module: str) -> bool:
    """Whether ``module`` declares parameters (``ipta.config``, ``ipta.<chapter>.config``).

    Config modules hold declarations and validation only; every value that can change a result
    reaches a key through :meth:`ipta.config.Config.cache_spec`, defaults and profiles included.
    So they stay out of code fingerprints: rewording a parameter's help keeps every cached SAE,
    while changing a default changes the values a key holds."""
    return module.rsplit(".", 1)[-1] == "config"


def code_closure(modules: Iterable[str]) -> dict[str, Path]:
    """Every module of the same top-level package reachable by imports from ``modules``, config
    and storage modules left out (:func:`is_config_module`, :data:`STORAGE_MODULES`)."""
    todo = list(modules)
    tops = {m.split(".")[0] for m in todo}
    found: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if (name in found or name.split(".")[0] not in tops or is_config_module(name)
                or name in STORAGE_MODULES):
            continue
        path = _source_file(name)
        if path is None:
            continue  # an imported attribute (a function or class), not a module
        found[name] = path
        st = path.stat()
        todo += _parsed(str(path), st.st_mtime_ns, st.st_size)[1]
        if "." in name:
            todo.append(name.rsplit(".", 1)[0])  # importing a.b runs a/__init__.py
    return found


def code_fingerprint(modules: Sequence[str]) -> str:
    """Digest of the code behind a result: the docstring-free syntax of every module in the
    import closure of ``modules`` (see the module docstring)."""
    h = hashlib.sha256()
    for name, path in sorted(code_closure(modules).items()):
        st = path.stat()
        h.update(f"{name}:{_parsed(str(path), st.st_mtime_ns, st.st_size)[0]};".encode())
    return h.hexdigest()
