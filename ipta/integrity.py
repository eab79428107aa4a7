"""File manifests: what a folder held when it was written, checked before it is read again.

A folder that must not be read damaged (a cache entry, an SAE checkpoint) gets a
``manifest.json`` written *last*, listing every other file with its size and SHA-256 (SHA-256
because it is the fastest hash in the standard library on CPUs with SHA extensions: about
1.7 GB/s here). Files over :data:`BLOCK_THRESHOLD` also record the digest of a fixed sample of
blocks, so a folder too large to hash on every read (``full=False``) is still checked for size
and for damage in the sampled blocks; ``ipta cache verify`` hashes everything.

:func:`check_folder` returns ``None`` for a sound folder and otherwise one line saying what is
wrong (a missing, extra-large, truncated or altered file, or a missing or unreadable manifest),
which the callers put in their warnings.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

MANIFEST = "manifest.json"
BLOCK_THRESHOLD = 16 << 20
"""Files larger than this (16 MiB) also record the digest of sampled blocks."""
N_BLOCKS, BLOCK = 16, 1 << 16


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sampled_sha256(path: str | os.PathLike, size: int) -> str:
    """SHA-256 of :data:`N_BLOCKS` blocks of :data:`BLOCK` bytes spread evenly over the file
    (first and last included)."""
    h = hashlib.sha256()
    step = max(size - BLOCK, 0) / (N_BLOCKS - 1)
    with open(path, "rb") as fh:
        for i in range(N_BLOCKS):
            fh.seek(int(round(i * step)))
            h.update(fh.read(BLOCK))
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: str | os.PathLike) -> dict[str, dict]:
    """Record every file under ``folder`` in its ``manifest.json`` (written last, atomically)."""
    folder = Path(folder)
    files = {}
    for path in _files(folder):
        size = path.stat().st_size
        files[path.relative_to(folder).as_posix()] = {
            "size": size, "sha256": file_sha256(path),
            **({"blocks_sha256": sampled_sha256(path, size)} if size > BLOCK_THRESHOLD else {})}
    tmp = folder / f".{MANIFEST}.{os.getpid()}"
    tmp.write_text(json.dumps({"format": 1, "files": files}, indent=1, sort_keys=True))
    os.replace(tmp, folder / MANIFEST)
    return files


def folder_bytes(folder: str | os.PathLike) -> int:
    """Total size of the files a folder's manifest lists (0 without a readable manifest)."""
    try:
        files = json.loads((Path(folder) / MANIFEST).read_text())["files"]
        return sum(int(f["size"]) for f in files.values())
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def check_folder(folder: str | os.PathLike, *, full: bool = True) -> str | None:
    """``None`` if every file the manifest lists is there with its recorded bytes, else what is
    wrong. ``full=False`` checks the size of every file, hashes small files whole and large ones
    by their sampled blocks; ``full=True`` hashes everything. Files not in the manifest are
    reported too (an entry holds exactly what was written)."""
    folder = Path(folder)
    try:
        recorded = json.loads((folder / MANIFEST).read_text())["files"]
        if not isinstance(recorded, dict):
            raise TypeError
    except FileNotFoundError:
        return f"it has no {MANIFEST} (written last, so it was never completed)"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"its {MANIFEST} is unreadable ({type(err).__name__})"
    for name, want in sorted(recorded.items()):
        path = folder / name
        try:
            size = path.stat().st_size
        except OSError:
            return f"file {name} is missing"
        if size != want.get("size"):
            return f"file {name} has {size} bytes, {want.get('size')} were written"
        if full or "blocks_sha256" not in want:
            if file_sha256(path) != want.get("sha256"):
                return f"file {name} does not match its recorded SHA-256"
        elif sampled_sha256(path, size) != want["blocks_sha256"]:
            return f"file {name} does not match its recorded block digests"
    extra = [p.relative_to(folder).as_posix() for p in _files(folder)]
    extra = [p for p in extra if p not in recorded and not Path(p).name.startswith(".")]
    if extra:
        return f"file {extra[0]} was not written with the entry"
    return None
