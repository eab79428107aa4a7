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


def _random_problem(rng, dtype):
    n, d = int(rng.integers(20, 400)), int(rng.integers(2, 120))
    X_ND = (rng.standard_normal((n, d)) * rng.uniform(0.2, 4)).astype(dtype)
    y_N = (X_ND @ rng.standard_normal(d) + rng.standard_normal(n) * rng.uniform(0.5, 4) > 0)
    return X_ND, y_N.astype(float)


@pytest.mark.parametrize("C", [1e-4, 1e-2, 1.0, 1e2])
@pytest.mark.parametrize("weighted", [False, True])
def test_logistic_regression_is_scikit_learns_fit(C, weighted):
    """On float64 inputs the solution equals scikit-learn's LogisticRegression (lbfgs) to 1e-9
    of the largest coefficient, the intercept too, with the same convergence verdict at 500
    iterations and at 3 (where lbfgs stops early and scikit-learn warns)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    from ipta.probes import logistic_regression

    rng = np.random.default_rng([int(C * 1e4), weighted])
    for max_iter in (500, 3):
        for _ in range(6):
            X_ND, y_N = _random_problem(rng, np.float64)
            w_N = rng.uniform(0.1, 2.0, len(y_N)) if weighted else None
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                ref = LogisticRegression(C=C, max_iter=max_iter).fit(X_ND, y_N, sample_weight=w_N)
            ours = logistic_regression(X_ND, y_N, C, max_iter, w_N)
            scale = np.abs(ref.coef_).max()
            np.testing.assert_allclose(ours.coef_D, ref.coef_[0], rtol=0, atol=1e-9 * scale)
            assert ours.intercept == pytest.approx(ref.intercept_[0], abs=1e-9 * max(scale, 1))
            assert ours.converged == (not caught)


def test_logistic_regression_on_float32_follows_scikit_learns_float32_path():
    """float32 inputs are solved as scikit-learn solves them (products in float32, each
    sample's loss in float64 rounded to float32, the start in float32): the coefficients agree
    to 1e-5 of the largest (float32 rounding, where a start in float64 drifted by 1%), are
    float32 as scikit-learn's, and the predictions agree on 99.9% of the samples."""
    from sklearn.linear_model import LogisticRegression

    from ipta.probes import logistic_regression

    rng = np.random.default_rng(32)
    agree, total = 0, 0
    for trial in range(30):
        X_ND, y_N = _random_problem(rng, np.float32)
        C = (1e-4, 1.0, 1e2)[trial % 3]
        ref = LogisticRegression(C=C, max_iter=500).fit(X_ND, y_N)
        ours = logistic_regression(X_ND, y_N, C, 500)
        np.testing.assert_allclose(ours.coef_D, ref.coef_[0], rtol=0,
                                   atol=1e-5 * np.abs(ref.coef_).max())
        assert ours.coef_D.dtype == ref.coef_.dtype and ours.logits(X_ND).dtype == np.float32
        agree += int(((ours.logits(X_ND) > 0) == ref.predict(X_ND).astype(bool)).sum())
        total += len(y_N)
    assert agree >= 0.999 * total


@pytest.mark.parametrize("y", [[0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 2, 1], [0.0, 0.5, 1.0, 1.0]])
def test_logistic_regression_refuses_labels_that_are_not_both_of_zero_and_one(y):
    from ipta.probes import logistic_regression

    with pytest.raises(ValueError, match="labels of both classes 0 and 1"):
        logistic_regression(np.eye(4), np.array(y, float), 1.0)


def test_one_blas_thread_limits_blas_inside_and_restores_it_after():
    import scipy.optimize  # noqa: F401 (its BLAS loaded, as when a probe is fitted)
    from threadpoolctl import threadpool_info

    from ipta.parallel import one_blas_thread

    before = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    with one_blas_thread():
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert {p["filepath"]: p["num_threads"] for p in threadpool_info()} == before
