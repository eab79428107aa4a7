"""Specification of ipta.theory.channels: the exact optimum across token noise and channel."""

import numpy as np
import pytest

from ipta.theory import channels
from ipta.theory.config import Config as TheoryConfig


@pytest.fixture(scope="module")
def grid():
    cfg = TheoryConfig.for_profile("smoke", n_graphs=2, context_noise=(0.4, 0.1, 0.02))
    return channels.grid(cfg)


def _select(arrays, **where):
    sel = np.ones(len(arrays["graph"]), bool)
    for key, value in where.items():
        sel &= arrays[key] == value
    return sel


def test_a_noiseless_named_channel_makes_the_log_posterior_form_exact(grid):
    """With token noise 0 the next-token log-odds are log-posterior differences: the whitened
    held-out R^2 of the log-posterior fit is 1 (to rounding) at every context noise."""
    a, m = grid
    sel = _select(a, channel="named", token_noise=0.0)
    assert np.allclose(a["r2_white"][sel, :, m["lp"]], 1.0, atol=1e-8)


def test_with_token_noise_the_fit_worsens_as_the_context_becomes_invertible(grid):
    a, m = grid
    uniform = m["weightings"].index("uniform")
    for t in (1e-3, 0.5):
        r2 = [a["r2_white"][_select(a, channel="named", token_noise=t, context_noise=c),
                            uniform, m["lp"]].mean() for c in (0.4, 0.1, 0.02)]
        assert r2[0] > r2[1] > r2[2], (t, r2)


def test_corollary_4_2_holds_for_an_additive_channel_near_invertibility_and_not_for_named(grid):
    """Mean cosine between same-concept pair differences, at token noise 1e-4 and the
    smallest context noise: above 0.9 for the additive channel, below 0.2 for the named one."""
    a, m = grid
    additive = a["cos_same"][_select(a, channel="additive", token_noise=m["sharp"],
                                     context_noise=0.02)].mean()
    named = a["cos_same"][_select(a, channel="named", token_noise=m["sharp"],
                                  context_noise=0.02)].mean()
    assert additive > 0.9 and named < 0.2
