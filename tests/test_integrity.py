"""Specification of ipta.integrity: a folder's manifest, written last, lists every file with its
size and SHA-256; checking it names the first thing that differs from what was written."""

import json

import pytest

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
                               "its manifest.json is unreadable (TypeError)"),
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
