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
import stat
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
    """Every regular file under ``folder`` but the manifest, links not followed."""
    out = []
    for root, _dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            path = Path(root, name)
            if name != MANIFEST or path.parent != folder:
                if stat.S_ISREG(os.lstat(path).st_mode):
                    out.append(path)
    return sorted(out)


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


MAX_MANIFEST_BYTES = 16 << 20
"""A manifest larger than this (16 MiB, far above any entry's) is damaged, not parsed."""
MAX_FILES = 100_000


def read_manifest(folder: str | os.PathLike) -> dict[str, dict]:
    """The manifest's records, ``name -> {"size": int, "sha256": str[, "blocks_sha256": str]}``,
    validated before anything trusts them: every record well formed, every name a relative
    POSIX path with no ``..``, no absolute part, no backslash and no NUL. Raises
    :class:`ManifestError` saying what is wrong (never anything else, whatever the file holds)."""
    path = Path(folder) / MANIFEST
    try:
        if not path.is_file() or path.is_symlink():
            raise ManifestError(f"its {MANIFEST} is missing or not a regular file")
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"its {MANIFEST} is too large to be one of ours")
        data = json.loads(path.read_text(encoding="utf-8"))
    except ManifestError:
        raise
    except (OSError, ValueError, RecursionError, UnicodeDecodeError) as err:
        raise ManifestError(f"its {MANIFEST} is unreadable ({type(err).__name__})") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or len(files) > MAX_FILES:
        raise ManifestError(f"its {MANIFEST} has no table of files")
    for name, record in files.items():
        problem = _name_problem(name) or _record_problem(record)
        if problem:
            raise ManifestError(f"its {MANIFEST} has a bad record for {name!r}: {problem}")
    return files


class ManifestError(ValueError):
    """A manifest that cannot be trusted: the folder is damaged."""


def _name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name or len(name) > 4096:
        return "not a file name"
    if "\\" in name or "\0" in name or name.startswith("/") or ":" in name.split("/")[0]:
        return "not a relative POSIX path"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "a path that leaves the folder or is not normal"
    return None


def _record_problem(record: object) -> str | None:
    if not isinstance(record, dict):
        return "not a record"
    size, digest = record.get("size"), record.get("sha256")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return "no valid size"
    if not isinstance(digest, str) or len(digest) != 64:
        return "no valid SHA-256"
    blocks = record.get("blocks_sha256")
    if blocks is not None and (not isinstance(blocks, str) or len(blocks) != 64):
        return "no valid block digest"
    return None


def folder_bytes(folder: str | os.PathLike) -> int:
    """Total size of the files a folder's manifest lists (0 without a valid manifest)."""
    try:
        return sum(f["size"] for f in read_manifest(folder).values())
    except ManifestError:
        return 0


def _regular_file(folder: Path, name: str) -> Path | str:
    """The path of ``name`` inside ``folder`` if it is a regular file there (no symlink on the
    way, not a device, FIFO or folder), else what is wrong with it."""
    path = folder / name
    try:
        for parent in [*reversed(path.relative_to(folder).parents)][1:]:
            if (folder / parent).is_symlink():
                return f"file {name} lies under a symbolic link"
        info = os.lstat(path)
    except OSError:
        return f"file {name} is missing"
    if stat.S_ISLNK(info.st_mode):
        return f"file {name} is a symbolic link"
    if not stat.S_ISREG(info.st_mode):
        return f"file {name} is not a regular file"
    return path


def check_folder(folder: str | os.PathLike, *, full: bool = True) -> str | None:
    """``None`` if every file the manifest lists is there with its recorded bytes, else what is
    wrong. ``full=False`` checks the size of every file, hashes small files whole and large ones
    by their sampled blocks; ``full=True`` hashes everything. Files not in the manifest are
    reported too (an entry holds exactly what was written), and so is any symbolic link, device
    or FIFO in the folder: a check never follows or opens one."""
    folder = Path(folder)
    try:
        recorded = read_manifest(folder)
    except ManifestError as err:
        if not (folder / MANIFEST).exists():
            return f"it has no {MANIFEST} (written last, so it was never completed)"
        return str(err)
    odd = _odd_entries(folder)
    if odd:
        return odd
    for name, want in sorted(recorded.items()):
        path = _regular_file(folder, name)
        if isinstance(path, str):
            return path
        size = path.stat().st_size
        if size != want["size"]:
            return f"file {name} has {size} bytes, {want['size']} were written"
        if full or "blocks_sha256" not in want:
            if file_sha256(path) != want["sha256"]:
                return f"file {name} does not match its recorded SHA-256"
        elif sampled_sha256(path, size) != want["blocks_sha256"]:
            return f"file {name} does not match its recorded block digests"
    extra = [p.relative_to(folder).as_posix() for p in _files(folder)]
    extra = [p for p in extra if p not in recorded and not Path(p).name.startswith(".")]
    if extra:
        return f"file {extra[0]} was not written with the entry"
    return None


def _odd_entries(folder: Path) -> str | None:
    """What in ``folder`` is neither a regular file nor a folder (a symbolic link, a device, a
    FIFO, a socket), without following links."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            info = os.lstat(os.path.join(root, name))
            if stat.S_ISLNK(info.st_mode):
                rel = Path(root, name).relative_to(folder).as_posix()
                return f"{rel} is a symbolic link"
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                rel = Path(root, name).relative_to(folder).as_posix()
                return f"{rel} is not a regular file"
    return None
