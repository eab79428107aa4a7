"""A positive control for the probing chapter: the same pipeline on representations where
Corollary 4.3's premises hold and the concept directions are known.

The model is the theory chapter's generative model (:mod:`ipta.latent.model`) with an additive
token channel (each active concept adds one vector to the next token's logits), a sharp channel
and a nearly invertible context; the representation of a context is the exact optimum of the
next-token objective, the log-odds ``l(x)`` of the next token (any trained optimum is an
invertible linear image of it), and the model's unembedding is the one that realises it
(``l(x)^T g(y)`` with ``g(y_i) = e_i`` and ``g(y_0) = 0``). A word pair of concept k is two
contexts drawn from two latent configurations that differ in concept k alone. So the probing
chapter's split, C sweep, held-out comparison and causal inner product run on data where "the
corollary holds" is known to be true, and the page can show what that looks like. With the
chapter's named channel instead, the corollary fails by construction (see the theory chapter):
the same pipeline should say so.
"""

from __future__ import annotations

import numpy as np

from ipta.latent.dag import sample_latents, config_index
from ipta.latent.model import ModelSpec, enumerate_model, exact_logit_ratios_XR, make_model
from ipta.probing.alignment import PairReps

CONTROLS = {"additive": "theory model, additive channel",
            "named": "theory model, named channel"}
"""The control's token channels and their names on the page."""


def theory_pairs(channel: str = "additive", pairs_per_concept: int = 60, *, n_concepts: int = 4,
                 context_bits: int = 15, context_noise: float = 0.03, token_noise: float = 1e-4,
                 seed: int = 0) -> tuple[PairReps, np.ndarray]:
    """``(pairs, cov_DD)``: each concept's counterfactual context pairs as the probing chapter
    reads word pairs, and the covariance of the unembedding vectors that realise ``l(x)``."""
    spec = ModelSpec(seed=seed, n_concepts=n_concepts, context_bits=context_bits)
    model = make_model(spec, 0, context_noise, token_noise, channel)
    ell_XR = exact_logit_ratios_XR(enumerate_model(model).pred_XY)
    rng = np.random.default_rng([seed, 11])
    code_ZM = model.code_ZM
    bits = 1 << np.arange(code_ZM.shape[1])

    def context(z_N: np.ndarray) -> np.ndarray:
        flips = rng.random((len(z_N), code_ZM.shape[1])) < context_noise
        return ((code_ZM[z_N] ^ flips).astype(np.int64) * bits).sum(1)

    base, target, words = [], [], []
    for k in range(n_concepts):
        z_NK = sample_latents(model.dag, pairs_per_concept, rng)
        z_NK[:, k] = 1
        with_k = config_index(z_NK)
        z_NK[:, k] = 0
        without_k = config_index(z_NK)
        base.append(ell_XR[context(with_k)])
        target.append(ell_XR[context(without_k)])
        words.append(tuple((f"k{k}+{i}", f"k{k}-{i}") for i in range(pairs_per_concept)))
    g_YR = np.vstack([np.eye(ell_XR.shape[1]), np.zeros((1, ell_XR.shape[1]))])
    centred = g_YR - g_YR.mean(0)
    names = tuple(f"z{k + 1}" for k in range(n_concepts))
    return (PairReps(names, tuple(base), tuple(target), tuple(words)),
            centred.T @ centred / len(centred))
