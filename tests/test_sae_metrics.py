"""Specification of ipta.sae.metrics: hand-computed reconstruction metrics and the H.2 metric."""

import numpy as np
import pytest

from ipta.sae import metrics as m


def test_mse_and_fvu_on_a_hand_computed_case():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    xhat = np.array([[1.0, 1.0], [3.0, 6.0]])
    # squared errors 0, 1, 0, 4 -> MSE 5/4; centred x: (-1,-1),(1,1) -> total variance 4
    assert m.mse(x, xhat) == pytest.approx(1.25)
    assert m.fvu(x, xhat) == pytest.approx(5 / 4)
    assert m.fvu(x, x) == 0.0
    assert m.fvu(x, np.tile(x.mean(0), (2, 1))) == pytest.approx(1.0)


def test_l0_and_dead_fraction_on_a_hand_computed_case():
    codes = np.array([[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 3.0], [0.0, 5.0, 0.0, 0.0]])
    assert m.l0(codes) == pytest.approx(4 / 3)
    assert m.dead_fraction(codes) == pytest.approx(0.5)


def test_pearson_matrix_matches_numpy_and_gives_zero_for_constant_columns():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 4))
    b[:, 2] = 1.0
    r = m.pearson_matrix(a, b)
    full = np.corrcoef(a.T, b[:, [0, 1, 3]].T)[:3, 3:]
    np.testing.assert_allclose(r[:, [0, 1, 3]], full, atol=1e-12)
    assert (r[:, 2] == 0).all()


def test_hungarian_pcc_recovers_planted_features():
    """exp of a planted feature is an affine map of its concept's logit: PCC 1, found exactly."""
    rng = np.random.default_rng(1)
    n, k, f = 400, 6, 40
    logits = rng.normal(size=(n, k))
    codes = np.abs(rng.normal(size=(n, f))) * (rng.random((n, f)) < 0.3)
    planted = rng.permutation(f)[:k]
    codes[:, planted] = np.log(logits - logits.min(0) + 1.0)
    match = m.concept_match(logits, codes)
    np.testing.assert_array_equal(match.feature_K, planted)
    np.testing.assert_allclose(match.pcc_K, 1.0, atol=1e-9)
    assert match.mean_pcc == pytest.approx(1.0) and match.coverage == 1.0


def test_hungarian_assigns_distinct_features_even_when_one_feature_fits_two_concepts():
    rng = np.random.default_rng(2)
    base = rng.normal(size=200)
    logits = np.stack([base, base + 0.01 * rng.normal(size=200)], 1)
    codes = np.stack([np.log(base - base.min() + 1), rng.random(200)], 1)
    match = m.concept_match(logits, codes)
    assert sorted(match.feature_K) == [0, 1]


def test_coverage_counts_strictly_above_the_threshold():
    match = m.ConceptMatch(pcc_K=np.array([0.2, 0.5, 0.51, 0.9]), feature_K=np.arange(4),
                           threshold=0.5)
    assert match.coverage == 0.5


def _planted(seed=0, n=400, k=3, f=20):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, k))
    codes = np.abs(rng.standard_normal((n, f)))
    codes[:, :k] = np.maximum(logits + 0.3 * rng.standard_normal((n, k)), 0)
    return logits, codes


def test_the_papers_reading_depends_on_the_scale_of_the_codes_and_the_others_do_not():
    """Halving every code changes Pearson(logit, exp(code)); raw Pearson, Spearman and the
    standardised reading are unchanged (to rounding)."""
    logits, codes = _planted()
    for variant in ("raw", "spearman", "exp_std"):
        a = m.concept_match(logits, codes, variant=variant).mean_pcc
        b = m.concept_match(logits, 0.5 * codes, variant=variant).mean_pcc
        assert a == pytest.approx(b, abs=1e-9), variant
    a = m.concept_match(logits, codes).mean_pcc
    assert abs(a - m.concept_match(logits, 4 * codes).mean_pcc) > 0.01


def test_spearman_is_blind_to_any_increasing_map_of_a_feature():
    logits, codes = _planted(1)
    a = m.concept_match(logits, codes, variant="spearman").pcc_K
    b = m.concept_match(logits, np.sqrt(codes) * 7 + 1, variant="spearman").pcc_K
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_score_codes_reports_every_reading():
    logits, codes = _planted(2)
    out = m.score_codes(codes, logits)
    for variant in m.METRIC_VARIANTS:
        key = "mean_pcc" if variant == "paper" else f"mean_pcc_{variant}"
        assert -1 <= out[key] <= 1
    with pytest.raises(ValueError, match="variant"):
        m.concept_match(logits, codes, variant="kendall")


def test_heldout_view_scores_the_assigned_feature_on_rows_it_was_not_chosen_on():
    """Feature 0 tracks the logit on every row; feature 1 tracks it only on the fit rows and is
    noise elsewhere. Both look perfect in sample; held out, only feature 0 keeps its score."""
    from ipta.sae.metrics import HeldOut, heldout_match

    rng = np.random.default_rng(0)
    n = 400
    y_N = rng.normal(size=n)
    fit_N = np.arange(n) < n // 2
    codes = np.log(np.c_[y_N - y_N.min() + 1, np.where(fit_N, y_N, rng.normal(size=n))
                         - min(y_N.min(), -5) + 1, rng.random((n, 3)) + 0.5])
    for column, expected in ((0, 1.0), (1, 0.0)):
        keep = [column, 2, 3, 4]
        match = heldout_match(codes[:, keep], HeldOut(y_N[:, None], fit_N, ~fit_N))
        assert match.feature_K[0] == 0
        assert match.pcc_K[0] == pytest.approx(expected, abs=0.15)


def test_the_heldout_halves_share_no_word_and_keep_pairs_whole():
    from ipta.sae.runs import heldout_view

    pairs = ((("go", "goes"), ("see", "sees"), ("eat", "eats"), ("go", "goes")),
             (("goes", "went"), ("cat", "cats"), ("dog", "dogs"), ("sun", "suns")))
    words = [w for concept in pairs for pair in concept for w in pair]
    concept_N = np.repeat([0, 1], 8)
    label_N = np.tile([1, 0], 8)
    reps = np.random.default_rng(1).normal(size=(16, 5))
    view = heldout_view(reps, concept_N, label_N, pairs, C=1.0)
    fit_words = {w for w, f in zip(words, view.fit_N) if f}
    score_words = {w for w, s in zip(words, view.score_N) if s}
    assert not fit_words & score_words
    assert not (view.fit_N & view.score_N).any()
    assert not view.fit_N[6:8].any() and not view.score_N[6:8].any()  # the repeated pair
    np.testing.assert_array_equal(view.fit_N[0::2], view.fit_N[1::2])  # pairs stay whole


@pytest.mark.parametrize("case", ["relu codes", "signed sparse", "dense", "rounded logits",
                                  "one row", "all zero", "every value tied", "no rows"])
def test_rank_columns_gives_rankdatas_values(case):
    """:func:`ipta.sae.metrics.rank_columns` equals ``scipy.stats.rankdata(a, axis=0)`` exactly,
    on the sparse codes it sorts itself (zeros tied, negative values below them, ties among
    the non-zeros) and on the matrices it hands to rankdata (dense, NaN)."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(7)
    a = {"relu codes": np.maximum(rng.standard_normal((400, 60)) - 1.5, 0),
         "signed sparse": np.where(rng.random((300, 40)) < 0.1,
                                   np.round(rng.standard_normal((300, 40)), 1), 0),
         "dense": rng.standard_normal((200, 30)).astype(np.float32),
         "rounded logits": np.round(rng.standard_normal((500, 27)), 1),
         "one row": rng.standard_normal((1, 5)),
         "all zero": np.zeros((7, 3)),
         "every value tied": np.where(rng.random((100, 5)) < 0.05, 2.0, 0.0),
         "no rows": np.zeros((0, 3))}[case]
    np.testing.assert_array_equal(m.rank_columns(a), rankdata(np.asarray(a, np.float64), axis=0))


def test_rank_columns_leaves_nan_columns_to_rankdata():
    from scipy.stats import rankdata

    a = np.zeros((6, 2))
    a[2, 0], a[3, 1] = np.nan, 1.0
    np.testing.assert_array_equal(m.rank_columns(a), rankdata(a, axis=0))


def test_evaluating_read_only_inputs_prints_no_warning():
    """A worker gets the concept data from joblib as read-only maps; torch warns (once per
    process, on stderr, which reaches the page) when a tensor is made from such an array.
    The evaluation copies a read-only input first. Run in a fresh interpreter: torch's warning
    fires once per process, so an earlier test could hide it here."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import numpy as np
        from ipta.sae.metrics import evaluate
        from ipta.sae.model import SparseAutoencoder

        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, 8)).astype(np.float32)
        x.flags.writeable = False
        logits = rng.standard_normal((64, 3))
        logits.flags.writeable = False
        row = evaluate(SparseAutoencoder(8, 16, "topk", {"k": 4}), x, x, logits)
        assert np.isfinite(row["val_mse"])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "not writable" not in done.stderr, done.stderr[-2000:]


def test_score_codes_computes_only_the_readings_asked_for_and_refuses_unknown_ones():
    rng = np.random.default_rng(3)
    codes, logits = np.maximum(rng.normal(size=(60, 12)), 0), rng.normal(size=(60, 3))
    everything = m.score_codes(codes, logits)
    paper = m.score_codes(codes, logits, readings=("paper",))
    assert {k for k in paper if k.startswith("mean_pcc")} == {"mean_pcc"}
    assert paper["mean_pcc"] == everything["mean_pcc"]
    assert paper["pcc_K"] == everything["pcc_K"]
    raw = m.score_codes(codes, logits, readings=("paper", "raw"))
    assert raw["mean_pcc_raw"] == everything["mean_pcc_raw"] and "mean_pcc_spearman" not in raw
    with pytest.raises(ValueError, match="'kendall'"):
        m.score_codes(codes, logits, readings=("kendall",))
