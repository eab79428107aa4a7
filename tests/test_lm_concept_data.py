"""Specification of ipta.lm.concept_data: our own 27-concept word-pair set, generated at run
time, complete, free of duplicates and identical pairs, and right on facts a reader can check."""

import pytest

from ipta.lm.concept_data import embedded_pairs
from ipta.lm.concepts import CONCEPT_NAMES, load_concept_set


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


@pytest.mark.parametrize("concept,pair", [
    ("verb-V+able", ("love", "lovable")), ("verb-V+able", ("notice", "noticeable")),
    ("verb-V+able", ("forget", "forgettable")), ("verb-V+er", ("run", "runner")),
    ("verb-V+er", ("bake", "baker")), ("verb-V+er", ("walk", "walker")),
    ("verb-V+er", ("travel", "traveller")), ("adj-adj+ly", ("gentle", "gently")),
    ("adj-adj+ly", ("easy", "easily")), ("adj-adj+ly", ("sad", "sadly")),
])
def test_derived_words_follow_the_english_spelling_rules(concept, pair):
    """-able drops a silent e but keeps it after c and g; -er doubles a final consonant after
    one short vowel; -ly turns -le into -ly and -y into -ily."""
    assert pair in embedded_pairs()[concept]


def test_the_pairs_come_in_the_papers_concept_order_and_as_a_fresh_copy_each_time():
    first = embedded_pairs()
    assert tuple(first) == CONCEPT_NAMES
    first["verb-3pSg"].clear()
    assert embedded_pairs()["verb-3pSg"], "a caller's change leaked into the generated set"
