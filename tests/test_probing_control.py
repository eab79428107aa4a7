"""Specification of ipta.probing.control: the probing pipeline's positive control, on the theory
chapter's model where the corollaries' premises hold."""

import numpy as np
import pytest

from ipta.probing.alignment import rigorous_mode
from ipta.probing.control import theory_pairs


@pytest.fixture(scope="module")
def additive():
    return theory_pairs("additive", pairs_per_concept=40)


def test_each_concept_gets_its_pairs_and_the_unembedding_covariance_is_symmetric_psd(additive):
    reps, cov_DD = additive
    assert len(reps.names) == 4 and all(len(b) == len(t) == 40
                                        for b, t in zip(reps.base, reps.target))
    D = reps.base[0].shape[1]
    assert cov_DD.shape == (D, D) and np.allclose(cov_DD, cov_DD.T)
    assert np.linalg.eigvalsh(cov_DD).min() > -1e-12


def test_a_pairs_two_contexts_differ_along_their_concepts_direction(additive):
    """With an additive channel near invertibility, a concept's pair differences are nearly
    parallel: their mean resultant length (|mean of unit differences|) exceeds 0.8."""
    reps, _ = additive
    for b, t in zip(reps.base, reps.target):
        d = b - t
        units = d / np.linalg.norm(d, axis=1, keepdims=True)
        assert np.linalg.norm(units.mean(0)) > 0.8


def test_where_the_corollary_holds_the_pipeline_shows_it(additive):
    """Held out at C = 100: the diagonal is far above the permuted-label null's (by 0.4) and
    the off-diagonal is small (below 0.1), in the Euclidean and the causal inner product."""
    reps, cov_DD = additive
    rows, _ = rigorous_mode(reps, (100.0,), (0,), cov_DD=cov_DD)
    by_kind = {r["kind"]: r for r in rows}
    for kind in ("probe", "probe, causal"):
        assert by_kind[kind]["diag"] > by_kind["permuted-label null"]["diag"] + 0.4, kind
        assert by_kind[kind]["offdiag_abs"] < 0.1, kind
