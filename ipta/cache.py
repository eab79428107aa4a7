"""One on-disk, content-addressed cache for every expensive result.

An entry is a directory ``<root>/<kind>/<key>/`` whose key is the SHA-256 of the kind, the
JSON of its spec (configuration, data checksums, model id...) and the package version.  Entries
are built in a temporary directory beside their final place and renamed into it, so an
interrupted run never leaves a half-written entry.  Arrays are stored as ``.npz`` and metadata
as ``cfg.json``/``meta.json``: no pickles, no absolute paths.

The root is ``$IPTA_CACHE_DIR`` if set, else ``~/.cache/ipta``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
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
    if hasattr(obj, "to_dict"):
        return _canonical(obj.to_dict())
    return obj


def cache_key(kind: str, spec: Mapping[str, Any]) -> str:
    """Hex digest naming the entry of ``kind`` for ``spec`` under this package version."""
    from ipta import __version__

    text = json.dumps({"kind": kind, "spec": _canonical(spec), "version": __version__},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def entry_dir(kind: str, spec: Mapping[str, Any]) -> Path:
    """Where the entry of ``kind`` for ``spec`` lives (it may not exist yet)."""
    return cache_root() / kind / cache_key(kind, spec)


def get_or_build_dir(kind: str, spec: Mapping[str, Any], build: Callable[[Path], None]) -> Path:
    """Return the entry directory, calling ``build(tmpdir)`` to fill it if it is missing.

    ``build`` writes its files into the temporary directory it is given; the directory is renamed
    into place only when ``build`` returns, so a crash or an interrupt leaves no entry behind.
    """
    final = entry_dir(kind, spec)
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
                   ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Cached ``(arrays, meta) = compute()``: arrays go to ``arrays.npz``, meta to ``meta.json``."""

    def build(tmp: Path) -> None:
        arrays, meta = compute()
        np.savez(tmp / "arrays.npz", **{k: np.asarray(v) for k, v in arrays.items()})
        (tmp / "meta.json").write_text(json.dumps(_canonical(dict(meta)), indent=1))

    path = get_or_build_dir(kind, spec, build)
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
