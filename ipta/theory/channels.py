"""The token channel's part in Theorem 3.1, read off the exact optimum (no training needed).

At the optimum f(x) is an invertible linear image of the next-token log-odds
``l_i(x) = log p(y_i|x) - log p(y_0|x)`` (:func:`ipta.latent.model.exact_logit_ratios_XR`), and the checks of
Theorem 3.1 that are invariant to such maps (the whitened R^2 of ``f ~ A u + b``, and whether
pair differences are parallel) can be run on ``l`` directly. Here they run over a grid of
token noise (the probability that the next token ignores z) down to 0, crossed with the
context noise, for the chapter's own channel (the token names z) and for an additive one (the
token's logits add one vector per active concept), which is where Corollary 4.2 should hold.

With a noiseless named channel, ``p(y_z|x) = p(z|x)`` and the log-odds are exactly
log-posterior differences: the theorem's form holds with no remainder at every level of
invertibility. Token noise puts a floor under every ``p(y|x)``: once a posterior entry falls
below it, ``log p(y|x)`` stops following ``log p(z|x)`` and the fit breaks, the more so the
more invertible the context (the smaller its posterior entries away from the mode).
"""

from __future__ import annotations

import numpy as np

from ipta.latent.invertibility import invertibility_error_X
from ipta.latent.model import enumerate_model, exact_logit_ratios_XR, make_model
from ipta.theory.checks import (FEATURES, WEIGHTINGS, affine_fit_scores, context_residuals,
                                features_XZ, insample_r2, pair_cosines, pair_differences)
from ipta.theory.config import Config

TOKEN_NOISE_GRID = (0.0, 1e-6, 1e-4, 1e-3, 1e-2, 0.02, 0.1, 0.5)
"""Token noises of the grid: 0 (the token names z exactly) up to the chapter's noisy channel."""
CHANNELS = ("named", "additive")
SHARP = 1e-4
"""The sharp token noise at which the two channels' Corollary 4.2 are set side by side."""


def grid(cfg: Config) -> tuple[dict[str, np.ndarray], dict]:
    """One row per (channel, graph, token noise, context noise): the exact optimum's whitened
    held-out R^2 for each u and weighting (``r2_white`` [weighting, feature]), its in-sample R^2
    for u = log p(z|x), the invertibility error under p(x) and under uniform weights, the median
    pointwise residual of the log-posterior map, and Corollary 4.2's mean cosines between pair
    differences of the same concept and of different concepts."""
    rows: dict[str, list] = {k: [] for k in (
        "channel", "graph", "token_noise", "context_noise", "r2_white", "r2_insample", "eps",
        "eps_uniform", "resid_lp", "cos_same", "cos_cross")}
    lp = FEATURES.index("log_posterior")
    for channel in CHANNELS:
        for g in range(cfg.n_graphs):
            for t in TOKEN_NOISE_GRID:
                for c in cfg.context_noise:
                    model = make_model(cfg, g, c, t, channel)
                    enum = enumerate_model(model)
                    ell_XR = exact_logit_ratios_XR(enum.pred_XY)
                    rng = np.random.default_rng([cfg.seed, 2, g])
                    test_X = rng.random(len(enum.p_X)) < cfg.test_fraction
                    r2 = np.zeros((len(WEIGHTINGS), len(FEATURES)))
                    for j, kind in enumerate(FEATURES):
                        u = features_XZ(enum.post_XZ, kind)
                        for i, w in enumerate((enum.p_X, np.ones_like(enum.p_X))):
                            r2[i, j] = affine_fit_scores(ell_XR, u, w, test_X)["r2_white"]
                    u_lp = features_XZ(enum.post_XZ, "log_posterior")
                    eps_X = invertibility_error_X(enum.post_XZ)
                    same, cross = pair_cosines(pair_differences(ell_XR, model.code_ZM,
                                                                cfg.n_concepts))
                    for key, value in (
                            ("channel", channel), ("graph", g), ("token_noise", t),
                            ("context_noise", c), ("r2_white", r2),
                            ("r2_insample", insample_r2(ell_XR, u_lp, np.ones_like(enum.p_X))),
                            ("eps", enum.p_X @ eps_X), ("eps_uniform", eps_X.mean()),
                            ("resid_lp", np.median(context_residuals(ell_XR, u_lp))),
                            ("cos_same", same.mean()), ("cos_cross", np.abs(cross).mean())):
                        rows[key].append(value)
    arrays = {k: np.array(v) for k, v in rows.items()}
    assert arrays["r2_white"].shape[1:] == (len(WEIGHTINGS), len(FEATURES))
    return arrays, {"features": list(FEATURES), "weightings": list(WEIGHTINGS),
                    "lp": lp, "token_noise_grid": list(TOKEN_NOISE_GRID),
                    "channels": list(CHANNELS), "sharp": SHARP}
