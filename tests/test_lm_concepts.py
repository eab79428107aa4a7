"""Concept sets: the paper's files are parsed, checksummed and counted; ours is complete."""

import shutil

import pytest

from ipta.lm.concepts import (CONCEPT_NAMES, PAPER_FILES, ConceptDataError, load_concept_set,
                           parse_pairs)

SHARED = "/work/shared/word_pairs"


def test_the_27_names_follow_the_papers_heatmap_order():
    assert len(CONCEPT_NAMES) == 27
    assert CONCEPT_NAMES[:3] == ("verb-3pSg", "verb-Ving", "verb-Ved")
    assert CONCEPT_NAMES[-1] == "German-Spanish" and CONCEPT_NAMES[15] == "country-capital"


def test_parser_reads_tab_pairs_skips_blank_lines_and_normalises_to_nfc():
    text = "cat\tcats\n\nnoe\u0308l\tNoe\u0308l"
    assert parse_pairs(text, "x") == [("cat", "cats"), ("no\u00ebl", "No\u00ebl")]


def test_parser_names_the_line_of_a_malformed_pair():
    with pytest.raises(ConceptDataError, match="x, line 2"):
        parse_pairs("a\tb\nno tab here", "x")


@pytest.mark.skipif(not shutil.os.path.isdir(SHARED), reason="shared word pairs absent")
def test_paper_set_has_2024_pairs_with_known_duplicates_and_identical_pairs():
    """Counts documented in word_pairs/README.md: 2,024 pairs, 4..228 per file, 22 duplicates."""
    cs = load_concept_set("paper", SHARED)
    rows = {r["concept"]: r for r in cs.report()}
    assert sum(r["pairs"] for r in rows.values()) == 2024
    assert rows["pronoun-possessive"]["pairs"] == 4 and rows["German-Spanish"]["pairs"] == 228
    assert rows["German-Spanish"]["duplicates"] == 22
    assert ("Singapore", "Singapore") in cs.pairs["country-capital"]
    assert rows["country-capital"]["identical"] >= 1


def _fake_dir(tmp_path, tamper=None):
    for _, file_name, _ in PAPER_FILES:
        (tmp_path / file_name).write_text("a\tb")
    if tamper is not None:
        (tmp_path / PAPER_FILES[tamper][1]).write_text("a\tc")
    return tmp_path


def test_a_file_with_another_checksum_is_refused_naming_the_file(tmp_path):
    _fake_dir(tmp_path)
    with pytest.raises(ConceptDataError, match=r"\[verb - 3pSg\]\.txt.*does not match"):
        load_concept_set("paper", str(tmp_path))


@pytest.mark.skipif(not shutil.os.path.isdir(SHARED), reason="shared word pairs absent")
def test_one_tampered_file_among_genuine_ones_is_refused(tmp_path):
    for _, file_name, _ in PAPER_FILES:
        shutil.copy(f"{SHARED}/{file_name}", tmp_path / file_name)
    (tmp_path / PAPER_FILES[5][1]).write_bytes((tmp_path / PAPER_FILES[5][1]).read_bytes() + b"\n")
    with pytest.raises(ConceptDataError, match=r"3pSg - Ved"):
        load_concept_set("paper", str(tmp_path))


def test_missing_directory_gives_a_clear_error(tmp_path):
    with pytest.raises(ConceptDataError, match="does not exist"):
        load_concept_set("paper", str(tmp_path / "nowhere"))


def test_missing_file_is_named(tmp_path):
    _fake_dir(tmp_path)
    (tmp_path / PAPER_FILES[0][1]).unlink()
    with pytest.raises(ConceptDataError, match="lacks the file"):
        load_concept_set("paper", str(tmp_path))


def test_unknown_source_lists_the_choices():
    with pytest.raises(ConceptDataError, match="embedded, paper"):
        load_concept_set("wikipedia")


def test_embedded_set_has_all_27_concepts_with_20_distinct_nonidentical_pairs_where_possible():
    cs = load_concept_set("embedded")
    assert cs.names == CONCEPT_NAMES
    for row in cs.report():
        assert row["duplicates"] == 0 and row["identical"] == 0, row
        # English has only seven subject pronouns with a possessive determiner.
        assert row["pairs"] >= (7 if row["concept"] == "pronoun-possessive" else 20), row


@pytest.mark.parametrize("concept,pair", [
    ("verb-Ved", ("bring", "brought")), ("noun-plural", ("child", "children")),
    ("adj-comparative", ("big", "bigger")), ("country-capital", ("France", "Paris")),
    ("English-French", ("January", "janvier")), ("German-Spanish", ("Montag", "lunes")),
    ("adj-adj+ly", ("happy", "happily")), ("verb-V+able", ("rely", "reliable")),
])
def test_embedded_generators_produce_known_facts(concept, pair):
    assert pair in load_concept_set("embedded").pairs[concept]


def test_subset_keeps_the_papers_order_and_checksum_tracks_content():
    cs = load_concept_set("embedded")
    sub = cs.subset(["male-female", "verb-3pSg"])
    assert sub.names == ("verb-3pSg", "male-female")
    assert sub.checksum() != cs.checksum()
