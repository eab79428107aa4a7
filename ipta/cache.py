"""One on-disk, content-addressed cache for every expensive result.

An entry is a directory ``<root>/<kind>/<key>/``. Its key is derived, never listed by hand: the
SHA-256 of the kind, the JSON of its spec, the package version and the *code fingerprint* of the
modules that compute it. A spec may hold a :class:`ipta.config.Config` (every field counts
except those declared ``affects_results=False``), arrays (keyed by their bytes), paths and plain
values. The code fingerprint follows the ``ipta`` imports of the named modules (lazy ones inside
functions too) and hashes each module's syntax tree without its docstrings, so editing a comment
or a docstring keeps the cache while any change to code a result depends on rebuilds it. Entries
are built in a temporary directory beside their final place and renamed into it, so an
interrupted run never leaves a half-written entry.  Arrays are stored as ``.npz`` and metadata
as ``cfg.json``/``meta.json``: no pickles, no absolute paths.

The root is ``$IPTA_CACHE_DIR`` if set, else ``~/.cache/ipta``.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ENV_VAR = "IPTA_CACHE_DIR"


def cache_root() -> Path:
    """The cache directory (created on first use)."""
    root = Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "ipta")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _canonical(obj: Any) -> Any:
    """JSON-ready form of a spec: tuples as lists, Paths as strings, numpy scalars as Python."""
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        data = np.ascontiguousarray(obj)
        return {"array_sha256": hashlib.sha256(data.tobytes()).hexdigest(),
                "shape": list(data.shape), "dtype": str(data.dtype)}
    if hasattr(obj, "cache_spec"):
        return _canonical(obj.cache_spec())
    if hasattr(obj, "to_dict"):
        return _canonical(obj.to_dict())
    return obj


# ------------------------------------------------------------------------ code fingerprints
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


def code_closure(modules: Iterable[str]) -> dict[str, Path]:
    """Every module of the same top-level package reachable by imports from ``modules``."""
    todo = list(modules)
    tops = {m.split(".")[0] for m in todo}
    found: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if name in found or name.split(".")[0] not in tops:
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


# ----------------------------------------------------------------------------------- entries
def cache_key(kind: str, spec: Mapping[str, Any], code: Sequence[str]) -> str:
    """Hex digest naming the entry of ``kind`` for ``spec``, computed by the modules ``code``
    (and everything they import), under this package version."""
    from ipta import __version__

    if isinstance(code, str):
        code = (code,)
    if not code:
        raise ValueError("cache_key needs the modules that compute the entry (code=...)")
    text = json.dumps({"kind": kind, "spec": _canonical(spec), "version": __version__,
                       "code": code_fingerprint(code)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def entry_dir(kind: str, spec: Mapping[str, Any], code: Sequence[str]) -> Path:
    """Where the entry of ``kind`` for ``spec`` lives (it may not exist yet)."""
    return cache_root() / kind / cache_key(kind, spec, code)


def get_or_build_dir(kind: str, spec: Mapping[str, Any], build: Callable[[Path], None], *,
                     code: Sequence[str]) -> Path:
    """Return the entry directory, calling ``build(tmpdir)`` to fill it if it is missing.

    ``build`` writes its files into the temporary directory it is given; the directory is renamed
    into place only when ``build`` returns, so a crash or an interrupt leaves no entry behind.
    """
    final = entry_dir(kind, spec, code)
    if (final / "cfg.json").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(tmp)
        (tmp / "cfg.json").write_text(json.dumps({"kind": kind, "spec": _canonical(spec)},
                                                 indent=1, sort_keys=True))
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "cfg.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def get_or_compute(kind: str, spec: Mapping[str, Any],
                   compute: Callable[[], tuple[Mapping[str, np.ndarray], Mapping[str, Any]]],
                   *, code: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Cached ``(arrays, meta) = compute()``: arrays go to ``arrays.npz``, meta to ``meta.json``.

    ``code`` names the modules whose functions ``compute`` runs (see :func:`cache_key`)."""

    def build(tmp: Path) -> None:
        arrays, meta = compute()
        np.savez(tmp / "arrays.npz", **{k: np.asarray(v) for k, v in arrays.items()})
        (tmp / "meta.json").write_text(json.dumps(_canonical(dict(meta)), indent=1))

    path = get_or_build_dir(kind, spec, build, code=code)
    with np.load(path / "arrays.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads((path / "meta.json").read_text())
    return arrays, meta


def file_checksum(path: str | os.PathLike, algo: str = "sha256") -> str:
    """Hex digest of a file's bytes, for cache specs that depend on data files."""
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
