"""Specification of ipta.theory.nexttoken: the softmax model f(x)^T g(y) trained against exact p(y|x)."""

import numpy as np
import pytest

from ipta.theory.config import Config as TheoryConfig
from ipta.latent.model import enumerate_model, exact_logit_ratios_XR, make_model
from ipta.theory.nexttoken import train_next_token

TINY = TheoryConfig(n_concepts=2, context_bits=3, n_graphs=1, test_fraction=0.3)


@pytest.fixture(scope="module")
def tiny():
    enums = [enumerate_model(make_model(TINY, g, 0.1, 0.2)) for g in range(2)]
    pred = np.stack([e.pred_XY for e in enums])
    p_x = np.stack([e.p_X for e in enums])
    return pred, p_x, train_next_token(pred, p_x, pred.shape[2] - 1, steps=1500, lr=0.05,
                                       seed=0, progress=False)


def test_trained_model_reaches_the_exact_optimum_on_a_tiny_case(tiny):
    """With width |Y| - 1 the KL to the exact p(y|x) falls below 1e-6 in every context."""
    pred, _, out = tiny
    assert np.all(out["kl_max_S"] < 1e-6)
    np.testing.assert_allclose(out["q_SXY"], pred, atol=2e-3)


def test_loss_curve_decreases_to_near_zero(tiny):
    curve = tiny[2]["curve"]
    assert curve[-1] < 1e-3 * curve[0]


def test_trained_representation_is_a_linear_image_of_the_optimal_logit_ratios(tiny):
    """Proof of Theorem 3.1 (Eqs. 19-24): at the optimum f(x) = G^-1 ell(x) with ell the
    log-ratio vector, so a linear fit of f on ell is exact (R^2 > 0.999)."""
    pred, _, out = tiny
    for s in range(len(pred)):
        ell = exact_logit_ratios_XR(pred[s])
        coef, *_ = np.linalg.lstsq(ell, out["f_SXD"][s], rcond=None)
        resid = out["f_SXD"][s] - ell @ coef
        assert (resid**2).sum() < 1e-3 * (out["f_SXD"][s] ** 2).sum()


def test_too_narrow_a_model_cannot_reach_the_optimum(tiny):
    """Width 1 < |Y| - 1: the log p(y|x) matrix has higher rank, so a KL gap remains."""
    pred, p_x, _ = tiny
    out = train_next_token(pred, p_x, 1, steps=800, lr=0.05, seed=0, progress=False)
    assert np.all(out["kl_S"] > 1e-4)


def test_mlp_encoder_also_approaches_the_optimum(tiny):
    """The MLP on the context bits is slower to fit, but gets within 1e-3 nats here."""
    pred, p_x, _ = tiny
    out = train_next_token(pred, p_x, pred.shape[2] - 1, steps=1500, lr=0.01, encoder="mlp",
                           seed=0, progress=False)
    assert np.all(out["kl_S"] < 1e-3)
