"""One on-disk, content-addressed cache for every expensive result.

An entry is a directory ``<root>/<kind>/<key>/``. Its key is derived, never listed by hand: the
SHA-256 of the kind, the JSON of its spec, the package version and the *code fingerprint* of the
modules that compute it. A spec may hold a :class:`ipta.config.Config` (every field counts
except those declared ``affects_results=False``), arrays (keyed by their bytes), paths and plain
values. The code fingerprint (:mod:`ipta.fingerprint`) follows the ``ipta`` imports of the named modules
(lazy ones inside functions too) and hashes each module's syntax tree without its docstrings, so
editing a comment or a docstring keeps the cache while any change to code a result depends on
rebuilds it; config modules, whose values a key holds already, are left out. A function
whose result is cached keys every one of its own arguments unless it names those that cannot
change the result (:func:`call_spec`), as joblib's memory does. Entries
are built in a temporary directory beside their final place and renamed into it, so an
interrupted run never leaves a half-written entry.  Arrays are stored as ``.npz`` and metadata
as ``cfg.json``/``meta.json``: no pickles, no absolute paths.

Every entry ends with a ``manifest.json`` of its files' sizes and SHA-256 digests
(:mod:`ipta.integrity`), checked when a process first opens the entry: a damaged entry is
moved to ``<root>/.damaged/`` with a :class:`CacheDamaged` warning and built again, never read.
One process builds an entry at a time (:func:`entry_lock`); temporaries left by a killed build
are removed by the next build of the same entry, and ``ipta cache clean`` removes the rest.

The root is ``$IPTA_CACHE_DIR`` if set, else ``~/.cache/ipta``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ipta.fingerprint import code_fingerprint
from ipta.integrity import MANIFEST, check_folder, folder_bytes, write_manifest

try:
    import fcntl
except ImportError:  # not POSIX: no build locks
    fcntl = None

ENV_VAR = "IPTA_CACHE_DIR"


class CacheLocationError(ValueError):
    """``$IPTA_CACHE_DIR`` names something that cannot be the cache (a file, say)."""


def cache_root() -> Path:
    """The cache directory (created on first use; a cache that exists but cannot be written is
    used for reading)."""
    root = Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "ipta").expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise CacheLocationError(f"{ENV_VAR}={str(root)!r} is not a folder; point it at a "
                                 "folder (it is created if missing) or unset it")
    if not root.exists():
        try:
            root.mkdir(parents=True)
        except FileExistsError:
            pass  # made meanwhile by another process
        except OSError as err:
            raise CacheLocationError(f"{ENV_VAR}={str(root)!r} cannot be created: "
                                     f"{err.strerror}") from None
    return root


def _canonical(obj: Any) -> Any:
    """JSON-ready form of a spec: tuples as lists, Paths as strings, numpy scalars as Python,
    arrays by their bytes, configs by their :meth:`~ipta.config.Config.cache_spec`, other
    dataclasses field by field, functions by name."""
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
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # A spec dataclass counts whole: every field, under its type's name.
        return {"type": type(obj).__qualname__,
                **{f.name: _canonical(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if callable(obj) and hasattr(obj, "__qualname__"):
        return f"{obj.__module__}.{obj.__qualname__}"  # its code is in the fingerprint
    return obj


# ----------------------------------------------------------------------------------- entries
def call_spec(func: Callable[..., Any], arguments: Mapping[str, Any], *,
              ignore: Sequence[str] = (), replace: Mapping[str, Any] | None = None
              ) -> dict[str, Any]:
    """The spec of a cached call of ``func``: every parameter of its signature, by name, with the
    value in ``arguments`` (the function's ``locals()`` at its start), except those in
    ``ignore`` (where to compute, how to report progress: what cannot change the result);
    ``replace`` keys a parameter by another value (a model name by its weights' fingerprint).

    Every parameter counts unless declared: a keyword added to ``func`` later is part of the key
    by itself. Names in ``ignore`` or ``replace`` that are not parameters are an error, so a
    renamed parameter cannot silently drop out of, or stay in, a key."""
    import inspect

    params = [p for p in inspect.signature(func).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    names = {p.name for p in params}
    replace = dict(replace or {})
    unknown = sorted((set(ignore) | set(replace)) - names)
    if unknown:
        raise KeyError(f"call_spec({func.__name__}): {unknown} are not its parameters")
    missing = sorted(names - set(arguments))
    if missing:
        raise KeyError(f"call_spec({func.__name__}): no value for {missing}")
    return {n: replace.get(n, arguments[n]) for n in (p.name for p in params) if n not in ignore}


FORMAT = 1
"""How entries are written and read (``cfg.json``, the manifest, the npz and json files of
:func:`get_or_compute`). This module is left out of code fingerprints (it computes no result),
so a change to that layout must bump this number, which every key holds."""


def cache_key(kind: str, spec: Mapping[str, Any], code: Sequence[str]) -> str:
    """Hex digest naming the entry of ``kind`` for ``spec``, computed by the modules ``code``
    (and everything they import but the storage modules), under this package version and
    storage :data:`FORMAT`."""
    from ipta import __version__

    if isinstance(code, str):
        code = (code,)
    if not code:
        raise ValueError("cache_key needs the modules that compute the entry (code=...)")
    text = json.dumps({"kind": kind, "spec": _canonical(spec), "version": __version__,
                       "format": FORMAT, "code": code_fingerprint(code)}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def entry_dir(kind: str, spec: Mapping[str, Any], code: Sequence[str]) -> Path:
    """Where the entry of ``kind`` for ``spec`` lives (it may not exist yet)."""
    return cache_root() / kind / cache_key(kind, spec, code)


class CacheDamaged(UserWarning):
    """A cache entry or checkpoint failed its check and was moved aside; it is rebuilt."""


FULL_CHECK_BYTES = 2 << 30
"""Entries up to this size (2 GiB) are hashed whole each time a process first opens them;
larger ones (a paper-sized activation store) are checked by size and sampled blocks, and whole
by ``ipta cache verify``."""

_SOUND: set[tuple[str, int]] = set()  # (entry, manifest mtime) checked in this process


def check_entry(path: Path, *, full: bool | None = None) -> str | None:
    """``None`` if the entry at ``path`` is sound, else what is wrong with it (see
    :func:`ipta.integrity.check_folder`); ``full=None`` chooses by the entry's size."""
    if full is None:
        full = folder_bytes(path) <= FULL_CHECK_BYTES
    return check_folder(path, full=full)


def _sound(path: Path) -> tuple[bool, str | None]:
    """(usable, problem): an absent entry is (False, None), a damaged one (False, problem)."""
    if not path.exists():
        return False, None
    try:
        stamp = (str(path), (path / MANIFEST).stat().st_mtime_ns)
    except OSError:
        stamp = None
    if stamp in _SOUND:
        return True, None
    problem = check_entry(path)
    if problem is None and stamp is not None:
        _SOUND.add(stamp)
    return problem is None, problem


def damaged_dir() -> Path:
    """Where damaged entries are moved (``ipta cache clean`` empties it)."""
    return cache_root() / ".damaged"


def move_aside(path: Path, problem: str, then: str = "it is built again") -> Path:
    """Move a damaged entry or checkpoint to :func:`damaged_dir`, with a :class:`CacheDamaged`
    warning that names it, what was wrong and what happens ``then``."""
    folder = damaged_dir() / path.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.",
                                   dir=folder))
    target.rmdir()  # a unique free name, on the cache's file system when it can be
    shutil.move(path, target)
    warnings.warn(CacheDamaged(f"{path} is damaged: {problem}; moved to {target}; {then}"),
                  stacklevel=3)
    return target


@contextlib.contextmanager
def named_lock(name: str):
    """Hold the lock ``<root>/.locks/<name>.lock``, waiting while another process holds it (with
    one line on a terminal's stderr).

    An ``flock``: the kernel releases it when its process dies, so a killed run never blocks the
    next. (Without ``fcntl`` there is no lock; two builds of one entry then both complete and
    the second one's rename loses harmlessly.)"""
    if fcntl is None:
        yield
        return
    locks = cache_root() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if sys.stderr.isatty():  # a terminal, not a notebook's page
                print(f"[ipta] waiting for another process holding {name}", file=sys.stderr,
                      flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def entry_lock(path: Path):
    """The build lock of the entry at ``path``: one process builds an entry, others wait and
    then read it."""
    return named_lock(f"{path.parent.name}-{path.name}")


def _temporaries(final: Path) -> list[Path]:
    return list(final.parent.glob(f".{final.name}.tmp-*"))


def _publish(tmp: Path, final: Path, kind: str, spec: Mapping[str, Any]) -> None:
    """Finish a built entry: its spec to ``cfg.json``, then the manifest (last), then the
    rename into place."""
    (tmp / "cfg.json").write_text(json.dumps({"kind": kind, "spec": _canonical(spec)},
                                             indent=1, sort_keys=True))
    write_manifest(tmp)
    os.rename(tmp, final)


def get_or_build_dir(kind: str, spec: Mapping[str, Any], build: Callable[[Path], None], *,
                     code: Sequence[str]) -> Path:
    """Return the entry directory, calling ``build(tmpdir)`` to fill it if it is missing.

    ``build`` writes its files into the temporary directory it is given; the spec goes to
    ``cfg.json``, then every file's digest to ``manifest.json``, and the directory is renamed
    into place, so a crash or an interrupt leaves no entry behind. An existing entry is checked
    against its manifest first; a damaged one is moved aside (see :func:`move_aside`) and built
    again. Builds of one entry are serialised by :func:`entry_lock`.
    """
    final = entry_dir(kind, spec, code)
    if _sound(final)[0]:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with entry_lock(final):
        usable, problem = _sound(final)  # another process may have built it while we waited
        if usable:
            return final
        if problem is not None:
            move_aside(final, problem)
        for stale in _temporaries(final):  # left by killed builds: we hold the entry's lock
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            build(tmp)
            _publish(tmp, final, kind, spec)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    _SOUND.add((str(final), (final / MANIFEST).stat().st_mtime_ns))
    return final


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of the ``torch.distributed`` process group, (0, 1) outside one."""
    try:
        import torch.distributed as dist
    except ImportError:
        return 0, 1
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def get_or_build_dir_collective(kind: str, spec: Mapping[str, Any],
                                build: Callable[[Path], None], *, code: Sequence[str]) -> Path:
    """:func:`get_or_build_dir` for a build every rank of a ``torch.distributed`` group takes
    part in (e.g. sharded activation extraction under torchrun): rank 0 checks the entry and
    tells the others; if it must be built, all ranks call ``build(tmp)`` on the same temporary
    folder, and rank 0 writes ``cfg.json`` and the manifest and renames it into place."""
    import torch.distributed as dist

    rank, _ = distributed_world()
    final = entry_dir(kind, spec, code)
    tmp = final.parent / f".{final.name}.tmp-ranks"
    decision: list[Any] = [None]
    if rank == 0:
        usable, problem = _sound(final)
        if not usable:
            final.parent.mkdir(parents=True, exist_ok=True)
            with entry_lock(final):
                if problem is not None:
                    move_aside(final, problem)
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir()
        decision = [usable]
    dist.broadcast_object_list(decision, src=0)
    if decision[0]:
        return final
    build(tmp)
    dist.barrier()
    if rank == 0:
        with entry_lock(final):
            _publish(tmp, final, kind, spec)
    dist.barrier()
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


# ------------------------------------------------------------------------- maintenance
def entries() -> list[Path]:
    """Every entry folder under the cache root (``<kind>/<key>``), in order."""
    root = cache_root()
    return sorted(p for p in root.glob("*/*") if p.is_dir() and not p.name.startswith(".")
                  and not p.parent.name.startswith(".") and p.parent.name != "sae_checkpoints")


def verify(*, full: bool = True, move: bool = False) -> list[tuple[Path, str | None]]:
    """(entry, problem or None) for every entry, hashing every file with ``full``; ``move``
    moves the damaged ones aside (they are rebuilt when next needed)."""
    report = []
    for path in entries():
        # Checking needs no lock (a build renames its entry into place whole), so a read-only
        # cache can be verified; moving aside takes the entry's lock.
        problem = check_entry(path, full=full) if path.exists() else None
        if problem is not None and move:
            with entry_lock(path), warnings.catch_warnings():
                warnings.simplefilter("ignore", CacheDamaged)
                if path.exists():
                    move_aside(path, problem)
        report.append((path, problem))
    return report


def _lock_is_free(path: Path) -> bool:
    """Whether no process holds the build lock of the entry at ``path``."""
    if fcntl is None:
        return True
    lock = cache_root() / ".locks" / f"{path.parent.name}-{path.name}.lock"
    if not lock.exists():
        return True
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
        return True


def _process_alive(suffix: str) -> bool:
    """Whether the process whose id ends a temporary's name (``.<pid>``) is running."""
    try:
        os.kill(int(suffix.lstrip(".")), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def clean(*, checkpoint_days: float = 7.0) -> list[Path]:
    """Remove what no run will read: temporaries of builds that are not running (their entry's
    lock is free), entries moved aside as damaged, and SAE checkpoints untouched for
    ``checkpoint_days`` (a run resumes from them, so recent ones are kept). Returns what went."""
    root, gone = cache_root(), []
    for tmp in root.glob("*/.*.tmp-*"):
        key = tmp.name[1:].split(".tmp-", 1)[0]
        if _lock_is_free(tmp.parent / key):
            gone.append(tmp)
    if damaged_dir().exists():
        gone += sorted(damaged_dir().iterdir())
    cutoff = time.time() - checkpoint_days * 86400
    for ckpt in (root / "sae_checkpoints").glob("*"):
        newest = max((p.stat().st_mtime for p in ckpt.rglob("*")), default=ckpt.stat().st_mtime)
        if newest < cutoff and _lock_is_free(root / "sae_run" / ckpt.name):
            gone.append(ckpt)
            continue
        # A checkpoint being written is a temporary named after its process; one whose process
        # is gone (killed, or its disk filled) is never renamed into place.
        gone += [tmp for tmp in ckpt.glob(".tmp_step_*") if not _process_alive(tmp.suffix)]
    for path in gone:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    return gone
