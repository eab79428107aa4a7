"""The content-addressed cache: same spec, same entry; entries appear whole or not at all; keys
derived from every results-affecting config field and from the code that computes them."""

import dataclasses
import json

import numpy as np
import pytest

import ipta
from ipta import cache
from ipta.config import Config, param

CODE = ("ipta.cache",)


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "cache"))


def test_the_cache_lives_where_the_environment_variable_says(tmp_path):
    assert cache.cache_root() == tmp_path / "cache"


def test_equal_specs_share_a_key_and_different_specs_or_versions_do_not(monkeypatch):
    a = cache.cache_key("acts", {"model": "m", "layer": -1, "words": ("a", "b")}, CODE)
    assert a == cache.cache_key("acts", {"layer": -1, "words": ["a", "b"], "model": "m"}, CODE)
    assert a != cache.cache_key("acts", {"model": "m", "layer": -2, "words": ("a", "b")}, CODE)
    assert a != cache.cache_key("probe", {"model": "m", "layer": -1, "words": ("a", "b")}, CODE)
    monkeypatch.setattr(ipta, "__version__", "999")
    assert a != cache.cache_key("acts", {"model": "m", "layer": -1, "words": ("a", "b")}, CODE)


def test_a_result_is_computed_once_and_then_read_back_equal():
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(6.0).reshape(2, 3)}, {"seed": 3}

    first = cache.get_or_compute("toy", {"n": 2}, compute, code=CODE)
    second = cache.get_or_compute("toy", {"n": 2}, compute, code=CODE)
    assert len(calls) == 1
    np.testing.assert_array_equal(first[0]["x"], second[0]["x"])
    assert second[1] == {"seed": 3}


def test_an_interrupted_build_leaves_no_entry_and_the_next_call_builds_it():
    def interrupted(_tmp):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.get_or_build_dir("toy", {"n": 1}, interrupted, code=CODE)
    kind_dir = cache.cache_root() / "toy"
    assert [p for p in kind_dir.iterdir()] == []
    path = cache.get_or_build_dir("toy", {"n": 1}, lambda tmp: (tmp / "w.txt").write_text("ok"),
                                  code=CODE)
    assert (path / "w.txt").read_text() == "ok"


def test_the_entry_records_its_spec_without_absolute_paths():
    path = cache.get_or_build_dir("toy", {"n": 1, "source": "embedded"}, lambda tmp: None,
                                  code=CODE)
    recorded = json.loads((path / "cfg.json").read_text())
    assert recorded == {"kind": "toy", "spec": {"n": 1, "source": "embedded"}}


@dataclasses.dataclass(frozen=True)
class ToyConfig(Config):
    steps: int = param(3, "a field that changes results")
    device: str = param("cpu", "where to compute", affects_results=False)


def test_a_results_affecting_field_rebuilds_and_a_declared_one_reuses_the_entry():
    """Every field counts unless declared affects_results=False (device, progress, ...)."""
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.zeros(1)}, {}

    cache.get_or_compute("toy", {"config": ToyConfig()}, compute, code=CODE)
    cache.get_or_compute("toy", {"config": ToyConfig(device="cuda")}, compute, code=CODE)
    assert len(calls) == 1
    cache.get_or_compute("toy", {"config": ToyConfig(steps=4)}, compute, code=CODE)
    assert len(calls) == 2


def test_arrays_in_a_spec_are_keyed_by_their_bytes():
    a = cache.cache_key("k", {"x": np.arange(3.0)}, CODE)
    assert a == cache.cache_key("k", {"x": np.arange(3.0)}, CODE)
    assert a != cache.cache_key("k", {"x": np.arange(3.0) + 1e-12}, CODE)
    assert a != cache.cache_key("k", {"x": np.arange(3.0, dtype=np.float32)}, CODE)


def test_a_key_without_code_is_refused():
    with pytest.raises(ValueError, match="code"):
        cache.cache_key("k", {}, ())


# ------------------------------------------------------------------------ damaged entries
def _toy_entry(calls=None):
    def compute():
        if calls is not None:
            calls.append(1)
        return {"x": np.arange(1000.0), "y": np.eye(3)}, {"seed": 3, "note": "toy"}

    return cache.get_or_compute("toy", {"n": 7}, compute, code=CODE)


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGE = {
    "flip a byte in arrays.npz": lambda e: _flip(e / "arrays.npz"),
    "truncate arrays.npz": lambda e: (e / "arrays.npz").write_bytes(
        (e / "arrays.npz").read_bytes()[:200]),
    "edit meta.json": lambda e: (e / "meta.json").write_text('{"seed": 4, "note": "toy"}'),
    "bad JSON in meta.json": lambda e: (e / "meta.json").write_text("{"),
    "delete cfg.json": lambda e: (e / "cfg.json").unlink(),
    "delete the manifest": lambda e: (e / "manifest.json").unlink(),
    "bad JSON in the manifest": lambda e: (e / "manifest.json").write_text("[1,"),
    "an extra file": lambda e: (e / "stray.npy").write_bytes(b"x"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_entry_is_moved_aside_and_rebuilt_equal_every_time(damage):
    calls = []
    clean_arrays, clean_meta = _toy_entry(calls)
    for attempt in range(2):  # the second round: rebuilding over a broken entry works again
        entry = next((cache.cache_root() / "toy").iterdir())
        DAMAGE[damage](entry)
        cache._SOUND.clear()  # a new process: nothing checked yet
        with pytest.warns(cache.CacheDamaged, match=rf"{entry.name} is damaged: .*rebuilt|"
                                                   rf"{entry.name} is damaged: .*built again"):
            arrays, meta = _toy_entry(calls)
        assert len(calls) == 2 + attempt
        np.testing.assert_array_equal(arrays["x"], clean_arrays["x"])
        assert meta == clean_meta
        assert cache.check_entry(entry) is None
    assert len(list((cache.damaged_dir() / "toy").iterdir())) == 2


def test_a_sound_entry_is_read_without_a_warning_or_a_rebuild(recwarn):
    calls = []
    _toy_entry(calls)
    cache._SOUND.clear()
    _toy_entry(calls)
    assert calls == [1] and not [w for w in recwarn if w.category is cache.CacheDamaged]


def test_large_entries_are_checked_by_size_and_sampled_blocks(monkeypatch):
    _toy_entry()
    entry = next((cache.cache_root() / "toy").iterdir())
    monkeypatch.setattr(cache, "FULL_CHECK_BYTES", 10)
    (entry / "meta.json").write_text((entry / "meta.json").read_text()[:-1] + " ")
    assert "meta.json does not match" in cache.check_entry(entry)  # small files: hashed whole
    assert cache.check_entry(entry, full=True) is not None


def test_temporaries_left_by_a_killed_build_are_removed_by_the_next_build():
    final = cache.entry_dir("toy", {"n": 7}, CODE)
    final.parent.mkdir(parents=True)
    stale = final.parent / f".{final.name}.tmp-killed"
    (stale / "half").mkdir(parents=True)
    _toy_entry()
    assert not stale.exists()


def test_verify_reports_a_damaged_entry_and_clean_removes_what_no_run_reads():
    _toy_entry()
    entry = next((cache.cache_root() / "toy").iterdir())
    assert cache.verify() == [(entry, None)]
    _flip(entry / "arrays.npz")
    (report,) = cache.verify(move=True)
    assert report[0] == entry and "arrays.npz does not match its recorded SHA-256" in report[1]
    assert not entry.exists()
    stale = entry.parent / f".{entry.name}.tmp-abc"
    stale.mkdir()
    gone = cache.clean()
    assert stale in gone and not stale.exists() and not list(cache.damaged_dir().iterdir())


def _build_slowly(root, counter):
    import os
    import time as time_

    os.environ[cache.ENV_VAR] = str(root)

    def build(tmp):
        with open(counter, "a") as fh:
            fh.write("built\n")
        time_.sleep(1.0)
        (tmp / "out.txt").write_text("done")

    path = cache.get_or_build_dir("toy", {"n": 9}, build, code=CODE)
    return (path / "out.txt").read_text()


def test_two_processes_asking_for_one_entry_build_it_once_and_both_read_it(tmp_path):
    import multiprocessing

    counter = tmp_path / "counter.txt"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        out = pool.starmap(_build_slowly, [(tmp_path / "cache", counter)] * 2)
    assert out == ["done", "done"]
    assert counter.read_text() == "built\n"


@pytest.fixture
def read_only_cache(monkeypatch):
    """The cache as on a read-only file system: every write under it fails with EROFS (root
    ignores permission bits, so a chmod could not show this)."""
    import builtins
    import errno
    import os
    import tempfile

    root = str(cache.cache_root())

    def refuse(path):
        if str(os.path.abspath(path)).startswith(root):
            raise OSError(errno.EROFS, "Read-only file system", str(path))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
    real_mkdtemp, real_rename, real_replace = tempfile.mkdtemp, os.rename, os.replace

    def open_(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and set(mode) & set("wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def mkdtemp(*args, dir=None, **kwargs):
        refuse(dir or tempfile.gettempdir())
        return real_mkdtemp(*args, dir=dir, **kwargs)

    def moved(real):
        def move(src, dst, *args, **kwargs):
            refuse(src)
            refuse(dst)
            return real(src, dst, *args, **kwargs)
        return move

    def switch_on():
        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(os, "mkdir", mkdir)
        monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
        monkeypatch.setattr(os, "rename", moved(real_rename))
        monkeypatch.setattr(os, "replace", moved(real_replace))

    return switch_on


def test_a_read_only_cache_serves_every_finished_result_and_verifies(read_only_cache, tmp_path):
    calls = []

    def build(tmp):
        calls.append(1)
        (tmp / "data.txt").write_text("x")

    entry = cache.get_or_build_dir("toy_dir", {"n": 1}, build, code=CODE)
    value = cache.get_or_compute("toy", {"n": 2}, lambda: ({"x": np.ones(3)}, {"m": 1}), code=CODE)
    cache._SOUND.clear()  # a new process: every entry is checked again before it is read
    read_only_cache()
    assert cache.get_or_build_dir("toy_dir", {"n": 1}, build, code=CODE) == entry
    np.testing.assert_array_equal(cache.get_or_compute("toy", {"n": 2}, None, code=CODE)[0]["x"],
                                  value[0]["x"])
    assert calls == [1]
    assert all(problem is None for _, problem in cache.verify())
    from ipta.sae.export import record_runs

    with pytest.warns(UserWarning, match=r"cannot be written \(Read-only file system\): the "
                                         r"runs' index is not updated"):
        record_runs([{"variant": "topk", "seed": 0, "folder": str(tmp_path / "x")}])
    with pytest.raises(OSError, match="Read-only"):  # what is missing cannot be built
        cache.get_or_build_dir("toy_dir", {"n": 3}, build, code=CODE)


def test_a_cache_variable_naming_a_file_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    from ipta.cli import main

    (tmp_path / "afile").write_text("")
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "afile"))
    for command in (["cache", "verify"], ["cache", "clean"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err == (f"ipta: error: IPTA_CACHE_DIR='{tmp_path / 'afile'}' is not a folder; "
                       "point it at a folder (it is created if missing) or unset it\n")


def test_clean_removes_checkpoint_temporaries_of_dead_processes_only(tmp_path):
    import os
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    ckpt = cache.cache_root() / "sae_checkpoints" / "abc"
    ckpt.mkdir(parents=True)
    (ckpt / "step_00000020").mkdir()
    orphan, live = ckpt / f".tmp_step_00000040.{dead}", ckpt / f".tmp_step_00000040.{os.getpid()}"
    orphan.mkdir()
    live.mkdir()
    gone = cache.clean()
    assert orphan in gone and not orphan.exists()
    assert live.exists() and (ckpt / "step_00000020").exists()


@pytest.mark.parametrize("manifest", ['{"meta.json": 5}', "[" * 100_000 + "]" * 100_000,
                                      '{"../../outside/secret.txt": {"size": 1, "sha256": "0"}}',
                                      '{"/dev/zero": {"size": 1, "sha256": "0"}}', "\x00\xff"])
def test_an_entry_with_a_hostile_manifest_is_moved_aside_and_rebuilt_and_verify_sees_all(
        manifest):
    """The manifests of the issue's report: each made every run fail (AttributeError,
    RecursionError) or was trusted; now the entry is damaged, rebuilt, and ``verify --move``
    checks every entry after it too."""
    def build(tmp):
        (tmp / "meta.json").write_text("{}")

    entries = [cache.get_or_build_dir("toy_dir", {"n": n}, build, code=CODE) for n in range(3)]
    (entries[0] / "manifest.json").write_text(manifest)
    cache._SOUND.clear()
    report = dict(cache.verify(move=True))
    assert report[entries[0]] is not None and "manifest" in report[entries[0]]
    assert report[entries[1]] is None and report[entries[2]] is None
    assert not entries[0].exists()  # moved aside
    (entries[1] / "manifest.json").write_text(manifest)
    cache._SOUND.clear()
    with pytest.warns(cache.CacheDamaged):
        again = cache.get_or_build_dir("toy_dir", {"n": 1}, build, code=CODE)
    assert again == entries[1] and cache.check_entry(again) is None
