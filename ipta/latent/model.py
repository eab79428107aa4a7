"""The paper's generative model with a context and a next token (section 2, Eqs. 1-3),
enumerated exactly: the theory chapter's model, and the probing chapter's positive control.

Binary latent concepts ``z`` live on a DAG (:mod:`ipta.latent.dag`: conditional Bernoulli
tables drawn from U[0.2, 0.8], appendix G.1).  A context ``x`` and a next token ``y``
are both generated from ``z`` alone, through two independent channels, so y is independent of x
given z by construction:

- context: ``n_x`` bits, each one bit of a random relabelling (permutation) of the joint latent
  configuration (the G.1 map of :mod:`ipta.latent.observe`), flipped with probability
  ``context_noise``.  That flip
  probability is the knob: 0.5 makes x useless about z (far from invertible), a small value makes
  the posterior p(z|x) peak on one configuration (nearly invertible).
- next token: a vocabulary of ``|Z| + vocab_extra`` symbols; with probability
  ``1 - token_noise`` the token names the configuration (through a random injection
  Z -> vocabulary), otherwise it is drawn from a per-configuration random distribution.

Everything is enumerated: the ``|Z| = 2^K`` configurations, the ``2^{n_x}`` contexts and the
vocabulary are small, and every array below is computed with vectorised numpy (loops run over
the K nodes only, never over contexts).  Shape legend: Z latent configurations, X contexts,
Y vocabulary, K concepts, M context bits.
"""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np

from ipta.latent.dag import (BernoulliDAG, all_configs, config_index, log_joint_probs, make_dag,
                             sample_latents)
from ipta.latent.observe import ObservationMap, pooled_observation_map


@dataclasses.dataclass(frozen=True)
class LatentModel:
    """One draw of the generative model (Eq. 1): DAG, CPTs, context code and token channel."""

    dag: BernoulliDAG
    """The concepts' graph and tables (tables[k][j]: P(z_k = 1 | parents in configuration j))."""
    context_map: ObservationMap
    """The noise-free context code of each latent configuration (appendix G.1)."""
    token_of_Z: np.ndarray
    """Vocabulary index that names each configuration (an injection Z -> Y)."""
    mix_ZY: np.ndarray
    """Distribution of the token when it ignores z, one row per configuration."""
    context_noise: float
    token_noise: float
    additive_ZY: np.ndarray | None = None
    """For an additive token channel: p(y|z) = softmax_y(sum_k z_k theta_ky + beta_y), which
    replaces the naming of z (None: the token names z)."""

    @property
    def graph(self) -> nx.DiGraph:
        return self.dag.graph

    @property
    def n_concepts(self) -> int:
        return self.dag.n_latents

    @property
    def code_ZM(self) -> np.ndarray:
        """Noise-free context bits of each latent configuration."""
        return self.context_map.code_CM


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a model is drawn from besides its noises (the theory chapter's Config has the same
    fields and serves as one)."""

    seed: int = 0
    graph: str = "er"
    n_concepts: int = 3
    edges_per_node: float = 1.0
    context_bits: int = 8
    vocab_extra: int = 1


def make_model(cfg: ModelSpec, graph_seed: int, context_noise: float, token_noise: float,
               channel: str = "named") -> LatentModel:
    """Draw graph, CPTs, context code and token channel from ``graph_seed`` (not from the noises,
    so that one graph is compared with itself along the knob).

    ``channel``: the token names z ("named", the chapter's model), or is drawn from a softmax
    whose logits add one random vector per active concept ("additive", where Corollary 4.2's
    pair differences are parallel by construction). ``cfg``: a :class:`ModelSpec` or any object
    with its fields (the theory chapter's Config)."""
    rng = np.random.default_rng([cfg.seed, graph_seed])
    edges = cfg.edges_per_node if cfg.graph == "er" else None
    dag = make_dag(cfg.graph, cfg.n_concepts, rng, edges_per_node=edges)
    n_z = 2**cfg.n_concepts
    context_map = pooled_observation_map(cfg.n_concepts, cfg.context_bits, rng)
    token_of_z = rng.permutation(n_z + cfg.vocab_extra)[:n_z]
    mix = rng.dirichlet(np.ones(n_z + cfg.vocab_extra), size=n_z)
    additive = None
    if channel == "additive":  # drawn last: the named channel's draws stay the same
        theta_KY = 2.0 * rng.standard_normal((cfg.n_concepts, n_z + cfg.vocab_extra))
        logits_ZY = all_configs(cfg.n_concepts) @ theta_KY + rng.standard_normal(n_z
                                                                                + cfg.vocab_extra)
        additive = np.exp(logits_ZY - logits_ZY.max(1, keepdims=True))
        additive /= additive.sum(1, keepdims=True)
    elif channel != "named":
        raise ValueError(f"token channel {channel!r} is not 'named' or 'additive'")
    return LatentModel(dag, context_map, token_of_z, mix, float(context_noise),
                       float(token_noise), additive)


def log_prior_Z(model: LatentModel) -> np.ndarray:
    """log p(z) for every configuration (the DAG factorisation of Eq. 1)."""
    return log_joint_probs(model.dag)


def log_context_likelihood_XZ(model: LatentModel) -> np.ndarray:
    """log p(x|z): independent bit flips, so it depends only on the Hamming distance."""
    x_XM = all_configs(model.code_ZM.shape[1]).astype(float)
    c_ZM = model.code_ZM.astype(float)
    dist_XZ = x_XM @ (1 - c_ZM).T + (1 - x_XM) @ c_ZM.T
    eta = model.context_noise
    return dist_XZ * np.log(eta) + (c_ZM.shape[1] - dist_XZ) * np.log1p(-eta)


def token_likelihood_ZY(model: LatentModel) -> np.ndarray:
    """p(y|z) = (1 - eta) [y names z] + eta * mix_z(y); an additive channel replaces
    [y names z] by its softmax."""
    if model.additive_ZY is not None:
        base_ZY = model.additive_ZY
    else:
        base_ZY = np.zeros_like(model.mix_ZY)
        base_ZY[np.arange(len(model.token_of_Z)), model.token_of_Z] = 1.0
    return (1 - model.token_noise) * base_ZY + model.token_noise * model.mix_ZY


@dataclasses.dataclass(frozen=True)
class Enumeration:
    """Exact distributions of one model; rows of ``*_XZ``/``*_XY`` are contexts."""

    p_Z: np.ndarray
    p_X: np.ndarray
    post_XZ: np.ndarray
    """p(z|x) by Bayes' rule (Eq. 3's ingredient)."""
    lik_ZY: np.ndarray
    """p(y|z)."""
    pred_XY: np.ndarray
    """p(y|x) = sum_z p(y|z) p(z|x) (Eq. 3)."""

    @property
    def log_post_XZ(self) -> np.ndarray:
        return np.log(self.post_XZ)


def enumerate_model(model: LatentModel) -> Enumeration:
    """p(z), p(x), p(z|x), p(y|z) and p(y|x), computed in log space for stability."""
    logp_Z = log_prior_Z(model)
    logjoint_XZ = log_context_likelihood_XZ(model) + logp_Z[None, :]
    top_X = logjoint_XZ.max(1, keepdims=True)
    logp_X = top_X[:, 0] + np.log(np.exp(logjoint_XZ - top_X).sum(1))
    post_XZ = np.exp(logjoint_XZ - logp_X[:, None])
    lik_ZY = token_likelihood_ZY(model)
    return Enumeration(np.exp(logp_Z), np.exp(logp_X), post_XZ, lik_ZY, post_XZ @ lik_ZY)


def sample(model: LatentModel, n: int, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ancestral samples (z index, x index, y index), for Monte Carlo checks of the enumeration."""
    z_N = config_index(sample_latents(model.dag, n, rng))
    flips_NM = rng.random((n, model.code_ZM.shape[1])) < model.context_noise
    x_NM = model.code_ZM[z_N] ^ flips_NM
    x_N = (x_NM.astype(np.int64) << np.arange(x_NM.shape[1])).sum(1)
    cum_NY = np.cumsum(token_likelihood_ZY(model)[z_N], 1)
    y_N = np.minimum((rng.random((n, 1)) > cum_NY).sum(1), cum_NY.shape[1] - 1)
    return z_N, x_N, y_N


def exact_logit_ratios_XR(pred_XY: np.ndarray) -> np.ndarray:
    """``log p(y|x) - log p(y_0|x)`` over the tokens that have positive probability in every
    context (a noiseless channel never emits some tokens), y_0 the last of them: the optimum of
    the next-token objective (Eq. 2) up to an invertible linear map (proof of Theorem 3.1)."""
    live = (pred_XY > 0).all(0)
    log_XY = np.log(pred_XY[:, live])
    return log_XY[:, :-1] - log_XY[:, [-1]]
