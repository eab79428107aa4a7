"""Specification of ipta.stats: the one place that turns measured differences into "beats",
"helps" or "does not": the exact sign-flip test over seeds, Holm's correction, the measured
false-positive share and the hierarchical bootstrap over seeds, concepts and words."""

import numpy as np
import pytest

from ipta.stats import (BEATS, HELPS, LEVEL, Difference, Resampler, Wording,
                        column_correlations, compare, directions, false_positive_share, holm,
                        sign_flip_p)


# ------------------------------------------------------------------------ seeds only
def test_a_difference_holds_the_mean_its_standard_error_and_the_number_of_seeds():
    d = Difference.of([1.0, 2.0, 6.0])
    assert (d.mean, d.n) == (3.0, 3)
    assert d.se == pytest.approx(np.std([1.0, 2.0, 6.0], ddof=1) / np.sqrt(3))
    one = Difference.of([0.4])
    assert one.mean == 0.4 and np.isnan(one.se) and one.n == 1
    assert Difference.of([]).n == 0 and np.isnan(Difference.of([]).mean)


def test_a_paired_difference_uses_the_seeds_both_sides_hold_in_seed_order():
    a = {2: 5.0, 0: 1.0, 1: 2.0, 7: 100.0}
    b = {0: 0.5, 1: 1.0, 2: 2.0, 9: -100.0}
    assert Difference.paired(a, b) == Difference.of([0.5, 1.0, 3.0])


@pytest.mark.parametrize("d,p", [([1.0, 2.0, 3.0], 1 / 8), ([1.0] * 5, 1 / 32),
                                 ([1.0, -1.0], 3 / 4), ([3.0, -1.0, 2.0], 2 / 8), ([], 1.0)])
def test_the_sign_flip_p_value_is_the_share_of_sign_patterns_at_least_as_high(d, p):
    """Counted by hand: e.g. (3, -1, 2) has mean 4/3, reached by (+,+,+) and (+,-,+) of 8."""
    assert sign_flip_p(d) == pytest.approx(p)


def test_past_16_differences_the_p_value_is_estimated_from_random_sign_patterns():
    """Statistical check: 20 differences of equal size, 13 positive. The exact p-value is
    P(Binomial(20, 1/2) >= 13) = 0.1316; 20,000 random patterns estimate it to within 3
    standard errors (0.7 points), the same estimate for the same seed."""
    from scipy.stats import binom

    d = np.r_[np.ones(13), -np.ones(7)]
    exact = binom.sf(12, 20, 0.5)
    assert abs(sign_flip_p(d) - exact) < 3 * np.sqrt(exact * (1 - exact) / 20_000)
    assert sign_flip_p(d) == sign_flip_p(d, seed=0) != sign_flip_p(d, seed=1)
    assert sign_flip_p(np.ones(20)) == 1 / 20_001, "never zero: (1 + #) / (n_random + 1)"


@pytest.mark.parametrize("d,direction", [
    ([0.3, 0.1, 0.2, 0.4, 0.5], 1), ([-0.3, -0.1, -0.2, -0.4, -0.5], -1),
    ([0.3, -0.1, 0.2, -0.4, 0.5], 0), ([5.0, 6.0, 7.0, 8.0], None), ([5.0], None), ([], None),
])
def test_the_direction_is_decided_by_the_exact_test_and_undecided_below_five_seeds(d, direction):
    """At the 5% level the smallest sign-flip p-value is 0.5^n: four seeds can never reach it."""
    assert Difference.of(d).direction() == direction


def test_a_stricter_level_needs_more_seeds():
    d = Difference.of([1.0] * 5)  # p = 1/32 = 0.031
    assert d.direction(LEVEL) == 1 and d.direction(0.01) is None
    assert Difference.of([1.0] * 7).direction(0.01) == 1  # 1/128


def test_verdicts_drawn_together_are_corrected_together():
    """Seven positive differences alone: two-sided p = 2/128, below 5%. Four such verdicts on
    one page: Holm multiplies the smallest by 4 (6.25%), and none stands."""
    up = Difference.of(np.arange(1.0, 8.0))
    assert directions({"a": up}) == {"a": 1}
    assert directions({"a": up, "b": Difference.of(-np.arange(1.0, 8.0))}) == {"a": 1, "b": -1}
    assert directions({name: up for name in "abcd"}) == dict.fromkeys("abcd", 0)


def test_a_verdict_with_too_few_pairs_is_undecided_whatever_its_family():
    few = Difference.of([1.0, 2.0, 3.0])
    assert directions({"few": few, "up": Difference.of(np.arange(1.0, 8.0))}) == {
        "few": None, "up": 1}
    assert directions({}) == {}


def test_each_wording_names_every_outcome():
    words = Wording("above", "below", "same", "undecided")
    assert [words(x) for x in (1, -1, 0, None)] == ["above", "below", "same", "undecided"]
    assert BEATS(1) == "beats" and BEATS(-1) == BEATS(0) == "does not beat"
    assert HELPS(1) == "helps" and HELPS(-1) == "hurts" and HELPS(0) != HELPS(None)
    assert "few seeds" in BEATS(None) and "few seeds" in HELPS(None)


def test_the_sign_flip_test_holds_its_level_on_null_differences():
    """Statistical check: 2000 null comparisons of 6 seeds (symmetric noise, mean 0). The
    observed mean's rank among the 64 sign patterns is uniform, so p <= 5% has chance 3/64
    (4.7%, at most the level); the share found lies within 3 binomial standard errors
    (1.4 points) of it."""
    rng = np.random.default_rng(0)
    p = [sign_flip_p(rng.normal(size=6)) for _ in range(2000)]
    share, low, high = false_positive_share(p)
    assert abs(share - 3 / 64) < 3 * np.sqrt(3 / 64 * (1 - 3 / 64) / 2000)
    assert low <= share <= high


# ------------------------------------------------------------------ many verdicts
def test_holm_multiplies_the_ith_smallest_p_value_by_m_minus_i_and_keeps_the_order():
    adjusted = holm([0.01, 0.04, 0.03, 0.5])
    np.testing.assert_allclose(adjusted, [0.04, 0.09, 0.09, 0.5])
    assert holm([0.6, 0.7]).max() == 1.0  # capped at one
    p = np.random.default_rng(1).uniform(size=20)
    adj = holm(p)
    assert (adj >= p).all() and (np.diff(adj[np.argsort(p)]) >= 0).all()


def test_the_false_positive_share_has_a_wilson_interval():
    share, low, high = false_positive_share([0.5] * 100)
    assert share == 0.0 and low == 0.0 and high == pytest.approx(0.0370, abs=1e-4)
    share, low, high = false_positive_share([0.01] * 5 + [0.5] * 15)
    assert share == 0.25 and low < 0.25 < high
    assert all(np.isnan(false_positive_share([])))


# ------------------------------------------------------- seeds, concepts and words
def _rows(n_concepts=3, pairs=4):
    """Two rows (base and target word) per pair; ``pairs`` pairs per concept."""
    strata_N = np.repeat(np.arange(n_concepts), 2 * pairs)
    units_N = np.repeat(np.arange(n_concepts * pairs), 2)
    return strata_N, units_N


def test_each_replicate_resamples_whole_pairs_within_each_concept():
    strata_N, units_N = _rows()
    r = Resampler(strata_N, units_N, n_concepts=3, n_seeds=2, n_boot=50, seed=0)
    w = r.row_weights_BN
    assert (w[:, 0::2] == w[:, 1::2]).all(), "a pair's two rows are drawn together"
    for k in range(3):
        assert (w[:, strata_N == k].sum(1) == 8).all(), "each concept keeps its number of rows"
    np.testing.assert_allclose(r.concept_weights_BK.sum(1), 1.0)
    assert not (w == 1).all()


def test_paired_sides_share_their_seed_draws_and_unpaired_ones_do_not():
    r = Resampler(*_rows(), n_concepts=3, n_seeds=3, n_boot=200, seed=0)
    first = r.seed_weights(3, paired=True)
    np.testing.assert_allclose(first.sum(1), 1.0)
    np.testing.assert_array_equal(r.seed_weights(3, paired=True, second=True), first)
    assert not np.array_equal(r.seed_weights(3, paired=False, second=True), first)


def test_the_same_seed_gives_the_same_replicates():
    a = Resampler(*_rows(), n_concepts=3, n_seeds=2, n_boot=20, seed=4)
    b = Resampler(*_rows(), n_concepts=3, n_seeds=2, n_boot=20, seed=4)
    np.testing.assert_array_equal(a.row_weights_BN, b.row_weights_BN)
    np.testing.assert_array_equal(a.concept_weights_BK, b.concept_weights_BK)


def test_column_correlations_are_pearsons_and_zero_for_a_constant_column():
    rng = np.random.default_rng(2)
    y, x = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    x[:, 1] += 2 * y[:, 1]
    x[:, 2] = 5.0
    observed, boot = column_correlations(y, x, np.ones((2, 40)))
    for k in (0, 1):
        assert observed[k] == pytest.approx(np.corrcoef(y[:, k], x[:, k])[0, 1], abs=1e-12)
    assert observed[2] == 0.0 and (boot[:, 2] == 0).all()
    np.testing.assert_allclose(boot, np.tile(observed, (2, 1)), atol=1e-5)  # float32 moments


def test_equal_systems_gain_nothing_and_a_system_ahead_on_every_draw_beats():
    """Paired seeds, same draws: B against itself has no spread and p = 1; B + 0.1 is 0.1
    ahead in every replicate, so its interval is that one point and p is at most 1/(B+1)."""
    rng = np.random.default_rng(3)
    r = Resampler(*_rows(), n_concepts=3, n_seeds=3, n_boot=99, seed=0)
    b_SK, b_SBK = rng.uniform(size=(3, 3)), rng.uniform(size=(3, 99, 3))
    same = compare(b_SK, b_SBK, b_SK, b_SBK, r, paired=True)
    assert (same.gain, same.sd, same.low, same.high, same.p) == (0.0, 0.0, 0.0, 0.0, 1.0)
    ahead = compare(b_SK + 0.1, b_SBK + 0.1, b_SK, b_SBK, r, paired=True)
    assert ahead.gain == pytest.approx(0.1) and ahead.sd == pytest.approx(0.0, abs=1e-9)
    assert ahead.low == pytest.approx(0.1) and ahead.high == pytest.approx(0.1)
    assert ahead.p <= 1 / 100


def test_a_comparisons_interval_holds_its_gain_and_widens_with_the_noise():
    rng = np.random.default_rng(5)
    r = Resampler(*_rows(), n_concepts=3, n_seeds=3, n_boot=200, seed=0)
    b_SK = rng.uniform(size=(3, 3))
    b_SBK = b_SK[:, None, :] + 0.01 * rng.normal(size=(3, 200, 3))
    widths = []
    for noise in (0.01, 0.1):
        a_SK = b_SK + 0.05
        a_SBK = a_SK[:, None, :] + noise * rng.normal(size=(3, 200, 3))
        c = compare(a_SK, a_SBK, b_SK, b_SBK, r, paired=True)
        assert c.gain == pytest.approx(0.05) and c.low < c.gain < c.high and 0 <= c.p <= 1
        widths.append(c.high - c.low)
    assert widths[1] > widths[0]
