"""The one concept probe and the word split (ipta.probes), on small hand-made inputs."""

import numpy as np
import pytest

from ipta.probes import fit_concept_probe, word_split


def shared_words():
    """Three concepts whose pairs share words across and within concepts, with a duplicated
    pair and an identical one."""
    return ((("go", "goes"), ("go", "went"), ("see", "sees"), ("see", "sees"), ("run", "run"),
             ("eat", "eats")),
            (("goes", "went"), ("sees", "saw"), ("cat", "cats"), ("dog", "dogs")),
            (("king", "queen"), ("man", "woman"), ("boy", "girl"), ("dog", "bitch")))


@pytest.mark.parametrize("seed", range(6))
def test_word_split_puts_no_word_on_both_sides_in_any_concept(seed):
    words = shared_words()
    splits = word_split(words, 0.4, np.random.default_rng(seed))
    side_words = [set(), set()]
    for pairs, parts in zip(words, splits):
        for side, idx in zip(side_words, parts):
            side.update(w for i in idx for w in pairs[i])
    assert not side_words[0] & side_words[1]


def test_word_split_drops_duplicate_and_identical_pairs_and_keeps_the_rest():
    train, test = word_split(shared_words(), 0.4, np.random.default_rng(0))[0]
    assert sorted(np.r_[train, test]) == [0, 1, 2, 5]  # the repeated (see, sees), (run, run) gone


def test_a_probe_separates_two_classes_and_reports_convergence():
    rng = np.random.default_rng(0)
    X_ND = np.r_[rng.normal(1.0, 1.0, (50, 4)), rng.normal(-1.0, 1.0, (50, 4))]
    probe = fit_concept_probe(X_ND, np.r_[np.ones(50), np.zeros(50)], C=1.0)
    assert probe.converged and probe.accuracy(X_ND[:50], X_ND[50:]) > 0.9
    assert np.linalg.norm(probe.direction_D) == pytest.approx(1.0)


def test_soft_labels_weight_each_input_once_per_label():
    """An input given with weights (p, 1 - p) pulls the probe as a labelled share p would."""
    X_ND = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    hard = fit_concept_probe(X_ND[:2], np.array([1, 0]), C=10.0)
    soft = fit_concept_probe(X_ND, np.array([1, 0, 0, 1]), C=10.0,
                             sample_weight_N=np.array([1.0, 1.0, 0.0, 0.0]))
    np.testing.assert_allclose(hard.coef_D, soft.coef_D, rtol=1e-6)
