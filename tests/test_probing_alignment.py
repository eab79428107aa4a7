"""Paper-mode and rigorous-mode arithmetic on synthetic representations with planted concepts."""

import numpy as np
import pytest

from ipta.probes import fit_pair_probe, word_split
from ipta.probing.alignment import (ESTIMATOR, NOISE_CEILING, PairReps, concept_directions,
                                    frobenius_gap, paper_mode, rigorous_mode, rigorous_seed,
                                    summarize)


def planted(K=4, D=24, n=40, shift=4.0, noise=1.0, seed=0, aniso=None):
    """Pairs that differ exactly along unit direction u_k (plus shared context and noise)."""
    rng = np.random.default_rng(seed)
    U_KD = np.linalg.qr(rng.standard_normal((D, K)))[0].T
    scale_D = np.ones(D) if aniso is None else aniso
    base, target = [], []
    for k in range(K):
        ctx_ND = rng.standard_normal((n, D)) * scale_D
        base.append(ctx_ND + shift * U_KD[k] / 2 + noise * rng.standard_normal((n, D)) * scale_D)
        target.append(ctx_ND - shift * U_KD[k] / 2 + noise * rng.standard_normal((n, D)) * scale_D)
    words = tuple(tuple((f"b{k}_{i}", f"t{k}_{i}") for i in range(n)) for k in range(K))
    return PairReps(tuple(f"c{k}" for k in range(K)), tuple(base), tuple(target), words), U_KD


def test_concept_direction_is_the_normalised_mean_of_base_minus_target():
    base = (np.array([[3.0, 0.0], [1.0, 2.0]]),)
    target = (np.array([[1.0, 0.0], [1.0, 0.0]]),)
    np.testing.assert_allclose(concept_directions(base, target), [[np.sqrt(0.5), np.sqrt(0.5)]])


def test_paper_mode_recovers_planted_orthogonal_concepts_with_a_near_identity_matrix():
    """Diagonal > 0.95, |off-diagonal| < 0.15, every row peaks on its diagonal (tolerances for n=40)."""
    reps, U_KD = planted()
    res = paper_mode(reps)
    assert res["diag"] > 0.95 and res["offdiag_abs"] < 0.15 and res["diag_is_row_max"] == 1.0
    assert np.all(np.abs(np.diag(res["A"] @ U_KD.T)) > 0.95)


def test_small_C_probe_tends_to_the_class_mean_difference_and_large_C_departs_from_it():
    """With anisotropic noise the max-likelihood weight is whitened; strong L2 undoes that."""
    aniso = np.r_[np.full(12, 3.0), np.full(12, 0.3)]
    reps, _ = planted(K=1, n=60, noise=1.0, aniso=aniso, seed=3)
    a_D = concept_directions(reps.base, reps.target)[0]
    cos_small = fit_pair_probe(reps.base[0], reps.target[0], 1e-4).direction_D @ a_D
    cos_large = fit_pair_probe(reps.base[0], reps.target[0], 1e2, max_iter=2000).direction_D @ a_D
    assert cos_small > 0.99 and cos_large < cos_small - 0.05


def test_frobenius_gap_vanishes_when_W_is_the_pseudo_inverse_of_A():
    rng = np.random.default_rng(1)
    A_KD = rng.standard_normal((3, 10))
    W_KD = np.linalg.pinv(A_KD.T)
    assert frobenius_gap(A_KD, W_KD) == pytest.approx(0.0, abs=1e-9)
    assert frobenius_gap(A_KD, A_KD) > 0.1


def test_summary_counts_rows_whose_maximum_is_on_the_diagonal():
    M = np.array([[0.9, 0.1, 0.0], [0.5, 0.2, 0.1], [0.0, -0.3, 0.7]])
    s = summarize(M)
    assert s["diag"] == pytest.approx(0.6) and s["diag_is_row_max"] == pytest.approx(2 / 3)
    assert s["offdiag_abs"] == pytest.approx(1.0 / 6)


def test_different_seeds_give_different_word_splits():
    reps, _ = planted(n=30)
    a = word_split(reps.words, 0.3, np.random.default_rng(0))[0][1]
    b = word_split(reps.words, 0.3, np.random.default_rng(1))[0][1]
    assert set(a) != set(b)


def test_the_heldout_matrix_uses_directions_from_heldout_pairs_only():
    """Making the held-out pairs' differences point along one fixed vector turns every row of
    M into that vector's cosines with the probes, whatever the training pairs say."""
    reps, _ = planted(K=3, D=16, n=30)
    split = word_split(reps.words, 0.3, np.random.default_rng(7))
    v = np.eye(16)[0]
    target = tuple(t.copy() for t in reps.target)
    for k, (_, test) in enumerate(split):
        target[k][test] = reps.base[k][test] - v
    res = rigorous_seed(PairReps(reps.names, reps.base, target, reps.words), (1.0,), seed=7)
    M = res["M"][1.0]
    np.testing.assert_allclose(M, np.tile(M[0], (3, 1)), atol=1e-12)


def test_rigorous_mode_separates_probes_from_null_and_random_baselines():
    """Planted concepts: held-out accuracy near the Bayes rate (~0.92; > 0.75 allows for ~12
    test pairs per concept); the held-out diagonal stays below the held-out directions' noise
    ceiling (+0.05 for its own noise) and, at small C, equals the mean-difference estimator's
    score (within 0.05: the probe is nearly that estimator there), while the same-pairs diagonal
    is 1 by construction; null and random diagonals are means of 4 cosines with sd ~
    1/sqrt(D) = 0.125 each, so |mean| < 0.3 is a ~5-sigma bound."""
    reps, _ = planted(D=64, n=40)
    rows, means = rigorous_mode(reps, (1e-4, 1.0), seeds=(0, 1))
    probe = [r for r in rows if r["kind"] == "probe"]
    estimator = {r["seed"]: r["diag"] for r in rows if r["kind"] == ESTIMATOR}
    ceiling = {r["seed"]: r["diag"] for r in rows if r["kind"] == NOISE_CEILING}
    assert all(r["heldout_accuracy"] > 0.75 and 0.5 < r["diag"] < ceiling[r["seed"]] + 0.05
               for r in probe)
    assert all(abs(r["diag"] - estimator[r["seed"]]) < 0.05 for r in probe if r["C"] == 1e-4)
    assert all(r["diag"] > 0.99 for r in rows
               if r["kind"].startswith("probe, same pairs") and r["C"] == 1e-4)
    for kind in ("permuted-label null", "random W"):
        assert all(abs(r["diag"]) < 0.3 for r in rows if r["kind"] == kind)
    assert means["M_1"].shape == (4, 4) and (means["estimator_K"] > 0.5).all()
    assert all(r["converged"] == 1.0 for r in probe)


def test_rigorous_mode_is_an_exact_function_of_its_seed():
    reps, _ = planted(n=20)
    first = rigorous_mode(reps, (1.0,), seeds=(5,))[0]
    again = rigorous_mode(reps, (1.0,), seeds=(5,))[0]
    assert first == again


def test_rigorous_mode_over_worker_processes_gives_the_one_process_rows(monkeypatch):
    """Each split is one task for a worker; the rows and means equal a plain loop's (to the
    rounding of a BLAS on one thread instead of two)."""
    import ipta.parallel

    reps, _ = planted(n=20)
    out = {}
    for n in (1, 2):
        monkeypatch.setattr(ipta.parallel, "cores", lambda n=n: n)
        out[n] = rigorous_mode(reps, (1e-4, 1.0), seeds=(0, 1, 2))
    (rows1, means1), (rows2, means2) = out[1], out[2]
    assert [(r["seed"], r["kind"], r["C"]) for r in rows1] == \
           [(r["seed"], r["kind"], r["C"]) for r in rows2]
    for a, b in zip(rows1, rows2):
        assert b["diag"] == pytest.approx(a["diag"], abs=1e-9, nan_ok=True)
    for name in means1:
        np.testing.assert_allclose(means2[name], means1[name], atol=1e-9)


def test_the_causal_cosine_is_unchanged_by_a_change_of_basis_that_keeps_every_logit():
    """Representations mapped by an invertible M, the unembedding (so its covariance) and the
    probe weights by M^-T: every logit is unchanged, and so is the causal cosine, while the
    Euclidean one moves."""
    from ipta.probing.alignment import causal_cosines

    rng = np.random.default_rng(0)
    D, K, V = 12, 4, 200
    gamma_VD = rng.standard_normal((V, D)) @ np.diag(np.linspace(0.3, 3, D))
    cov = np.cov(gamma_VD.T, bias=True)
    A_KD, W_KD = rng.standard_normal((K, D)), rng.standard_normal((K, D))
    M = rng.standard_normal((D, D)) + 3 * np.eye(D)
    M_inv_T = np.linalg.inv(M).T
    cov_moved = np.cov((gamma_VD @ M_inv_T.T).T, bias=True)
    before = causal_cosines(A_KD, W_KD, cov)
    after = causal_cosines(A_KD @ M.T, W_KD @ M_inv_T.T, cov_moved)
    np.testing.assert_allclose(after, before, atol=1e-8)
    euclid = lambda X, Y: (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (  # noqa: E731
        Y / np.linalg.norm(Y, axis=1, keepdims=True)).T
    assert np.abs(euclid(A_KD @ M.T, W_KD @ M_inv_T.T) - euclid(A_KD, W_KD)).max() > 0.05


def test_the_noise_ceiling_estimates_the_true_directions_cosine_with_a_held_out_one():
    """Planted pairs whose true directions are known: the noise ceiling (split-half, corrected)
    lies within 0.05 of the mean cosine between each held-out direction and its true one."""
    reps, U_KD = planted(K=4, D=48, n=80, noise=2.0, seed=4)
    res = rigorous_seed(reps, (1.0,), seed=0)
    split = word_split(reps.words, 0.3, np.random.default_rng(0))
    true_cos = []
    for k, (_, test) in enumerate(split):
        a = (reps.base[k][test] - reps.target[k][test]).mean(0)
        true_cos.append(a @ U_KD[k] / np.linalg.norm(a))
    assert np.nanmean(res["noise_ceiling_K"]) == pytest.approx(np.mean(true_cos), abs=0.05)
