"""Specification of ipta.integrity: a folder's manifest, written last, lists every file with its
size and SHA-256; checking it names the first thing that differs from what was written."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipta import integrity


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path):
    f = tmp_path / "f.txt"
    f.write_bytes(b"abc")
    assert integrity.file_sha256(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def _folder(tmp_path):
    folder = tmp_path / "entry"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(bytes(range(256)) * 4)
    (folder / "sub" / "b.txt").write_text("hello")
    integrity.write_manifest(folder)
    return folder


def test_a_folder_as_written_is_sound_and_its_manifest_lists_every_other_file(tmp_path):
    folder = _folder(tmp_path)
    recorded = json.loads((folder / integrity.MANIFEST).read_text())["files"]
    assert sorted(recorded) == ["a.bin", "sub/b.txt"]
    assert recorded["sub/b.txt"] == {"size": 5,
                                     "sha256": integrity.file_sha256(folder / "sub" / "b.txt")}
    assert integrity.check_folder(folder) is None
    assert integrity.check_folder(folder, full=False) is None


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGE = {
    "missing": (lambda f: (f / "sub" / "b.txt").unlink(), "file sub/b.txt is missing"),
    "truncated": (lambda f: (f / "a.bin").write_bytes(b"x"),
                  "file a.bin has 1 bytes, 1024 were written"),
    "altered": (lambda f: _flip_last_byte(f / "a.bin"),
                "file a.bin does not match its recorded SHA-256"),
    "extra": (lambda f: (f / "stray.npy").write_bytes(b"x"),
              "file stray.npy was not written with the entry"),
    "no manifest": (lambda f: (f / integrity.MANIFEST).unlink(),
                    "it has no manifest.json (written last, so it was never completed)"),
    "bad manifest": (lambda f: (f / integrity.MANIFEST).write_text("[1,"),
                     "its manifest.json is unreadable (JSONDecodeError)"),
    "manifest without files": (lambda f: (f / integrity.MANIFEST).write_text('{"files": [1]}'),
                               "its manifest.json has no table of files"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_each_kind_of_damage_is_named_in_one_line(tmp_path, damage):
    folder = _folder(tmp_path)
    harm, message = DAMAGE[damage]
    harm(folder)
    assert integrity.check_folder(folder) == message


def test_a_hidden_temporary_beside_the_files_is_not_damage(tmp_path):
    folder = _folder(tmp_path)
    (folder / ".manifest.json.123").write_text("{}")
    assert integrity.check_folder(folder) is None


def test_large_files_also_record_sampled_blocks_which_catch_damage_without_a_full_hash(
        tmp_path, monkeypatch):
    """Past the threshold a file's sampled blocks are recorded; ``full=False`` checks only
    those (damage in the last block is caught), ``full=True`` hashes the whole file."""
    monkeypatch.setattr(integrity, "BLOCK_THRESHOLD", 100)
    folder = _folder(tmp_path)
    recorded = json.loads((folder / integrity.MANIFEST).read_text())["files"]
    assert "blocks_sha256" in recorded["a.bin"] and "blocks_sha256" not in recorded["sub/b.txt"]
    _flip_last_byte(folder / "a.bin")
    assert integrity.check_folder(folder, full=False) == \
        "file a.bin does not match its recorded block digests"
    assert integrity.check_folder(folder, full=True) == \
        "file a.bin does not match its recorded SHA-256"


def test_sampled_blocks_cover_the_first_and_the_last_block_of_a_file(tmp_path, monkeypatch):
    monkeypatch.setattr(integrity, "BLOCK", 8)
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(1000))
    before = integrity.sampled_sha256(path, 1000)
    for where in (0, 999):
        data = bytearray(1000)
        data[where] = 1
        path.write_bytes(bytes(data))
        assert integrity.sampled_sha256(path, 1000) != before, where


def test_folder_bytes_is_the_total_size_the_manifest_lists_and_zero_without_one(tmp_path):
    folder = _folder(tmp_path)
    assert integrity.folder_bytes(folder) == 1024 + 5
    (folder / integrity.MANIFEST).unlink()
    assert integrity.folder_bytes(folder) == 0


HOSTILE = {
    "a record that is a number": ({"files": {"a.bin": 5}}, "bad record for 'a.bin'"),
    "a size that is text": ({"files": {"a.bin": {"size": "9", "sha256": "0" * 64}}},
                            "no valid size"),
    "a path out of the folder": ({"files": {"../../outside/secret.txt": {
        "size": 5, "sha256": "0" * 64}}}, "leaves the folder"),
    "an absolute path": ({"files": {"/etc/hostname": {"size": 5, "sha256": "0" * 64}}},
                         "not a relative POSIX path"),
    "a path with .. inside": ({"files": {"sub/../a.bin": {"size": 1, "sha256": "0" * 64}}},
                 "leaves the folder"),
    "not an object": ([1, 2, 3], "no table of files"),
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_malformed_or_hostile_manifest_means_damaged_never_a_crash(tmp_path, kind):
    manifest, expected = HOSTILE[kind]
    folder = _folder(tmp_path)
    (folder / integrity.MANIFEST).write_text(json.dumps(manifest))
    problem = integrity.check_folder(folder)
    assert problem is not None and expected in problem


def test_a_deeply_nested_or_huge_manifest_is_damaged(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    (folder / integrity.MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    assert "unreadable" in integrity.check_folder(folder)
    monkeypatch.setattr(integrity, "MAX_MANIFEST_BYTES", 10)
    integrity.write_manifest(folder)
    assert "too large" in integrity.check_folder(folder)


def test_a_symbolic_link_in_an_entry_is_damage_and_is_never_followed(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("private")
    folder = _folder(tmp_path)
    (folder / "link.txt").symlink_to(outside)
    assert integrity.check_folder(folder) == "link.txt is a symbolic link"
    (folder / "link.txt").unlink()
    (folder / "sub" / "b.txt").unlink()
    (folder / "sub" / "b.txt").symlink_to(outside)
    assert "symbolic link" in integrity.check_folder(folder)


def test_a_fifo_in_an_entry_is_damage_and_is_never_opened(tmp_path):
    import os

    folder = _folder(tmp_path)
    (folder / "sub" / "b.txt").unlink()
    os.mkfifo(folder / "sub" / "b.txt")  # opening it for reading would block forever
    assert integrity.check_folder(folder) == "sub/b.txt is not a regular file"


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=12), children, max_size=4),
                    max_leaves=20))
@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_whatever_json_a_manifest_holds_the_check_answers_in_one_line(tmp_path, manifest):
    """Fuzz: any JSON value as the manifest, or as its table of files, gives ``None`` (only when
    it lists exactly the folder's files correctly) or one line saying what is wrong."""
    folder = tmp_path / "fuzz"
    folder.mkdir(exist_ok=True)
    (folder / "a.bin").write_bytes(b"abc")
    for value in (manifest, {"files": manifest}):
        (folder / integrity.MANIFEST).write_text(json.dumps(value))
        problem = integrity.check_folder(folder)
        assert problem is None or (isinstance(problem, str) and "\n" not in problem)
        assert integrity.folder_bytes(folder) >= 0
