"""The paper's latent variable model (section 2, Eq. 1), enumerated exactly.

Binary latent concepts ``z`` live on a DAG; each node is a conditional Bernoulli whose
parameters are drawn from U[0.2, 0.8] (appendix G.1).  A context ``x`` and a next token ``y``
are both generated from ``z`` alone, through two independent channels, so y is independent of x
given z by construction:

- context: ``n_x`` bits, each one bit of a random relabelling (permutation) of the joint latent
  configuration, as in appendix G.1, flipped with probability ``context_noise``.  That flip
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
from typing import Literal

import networkx as nx
import numpy as np

from ipta.config import Config, ConfigError, param


@dataclasses.dataclass(frozen=True)
class TheoryConfig(Config):
    """Parameters of the theory chapter (notebook ``01_theory``)."""

    n_concepts: int = param(3, "number K of binary latent concepts (|Z| = 2^K)", low=2, high=6)
    graph: Literal["chain", "er"] = param("er", "latent DAG: a chain, or Erdos-Renyi with "
                                          "`edges_per_node` * K expected edges")
    edges_per_node: float = param(1.0, "ER graphs: expected edges per node (ER1, ER2, ...)",
                                  low=0.0, high=3.0)
    n_graphs: int = param(3, "random graphs (each with its own CPTs, codes and channels)",
                          low=1, high=50)
    context_bits: int = param(8, "bits M in a context x (|X| = 2^M contexts)", low=2, high=12)
    context_noise: tuple[float, ...] = param(
        (0.4, 0.3, 0.2, 0.12, 0.07, 0.04, 0.02, 0.01),
        "flip probabilities of the context bits: the invertibility knob (0.5 = no information)",
        low=1e-4, high=0.49)
    token_noise: tuple[float, ...] = param(
        (0.5, 0.02), "probabilities that the next token ignores z (its channel's noise)",
        low=1e-4, high=1.0)
    vocab_extra: int = param(1, "vocabulary size minus |Z| (the diversity condition needs >= 1)",
                             low=0, high=64)
    width_extra: int = param(0, "representation width d minus (|Y| - 1), the least width that "
                             "can reach the optimum", low=0, high=64)
    encoder: Literal["table", "mlp"] = param("table", "f(x): a free table per context, or an MLP "
                                             "on the context bits")
    steps: int = param(3000, "optimisation steps of the next-token model", low=1, high=200_000)
    lr: float = param(0.05, "Adam learning rate", low=1e-6, high=10.0)
    test_fraction: float = param(0.5, "share of contexts held out of the least-squares fit",
                                 low=0.05, high=0.95)
    seed: int = param(0, "master seed (graphs, CPTs, codes, initialisations, splits)", low=0)

    PROFILES = {
        "smoke": {"n_graphs": 2, "context_bits": 6, "context_noise": (0.3, 0.1, 0.02),
                  "steps": 600},
        "paper": {"n_concepts": 4, "n_graphs": 10, "context_bits": 11, "steps": 20000,
                  "lr": 0.02, "context_noise": (0.45, 0.4, 0.3, 0.2, 0.12, 0.07, 0.04, 0.02,
                                                0.01, 0.005),
                  "token_noise": (0.5, 0.2, 0.02)},
    }

    def validate(self) -> None:
        if self.context_bits < self.n_concepts:
            raise ConfigError(f"parameter 'context_bits': {self.context_bits} is below "
                              f"n_concepts={self.n_concepts}; a context needs at least K bits "
                              "to be able to identify z")
        if self.graph == "chain" and self.edges_per_node != 1.0:
            raise ConfigError("parameter 'edges_per_node' only applies to graph='er'")


@dataclasses.dataclass(frozen=True)
class LatentModel:
    """One draw of the generative model (Eq. 1): DAG, CPTs, context code and token channel."""

    graph: nx.DiGraph
    theta: tuple[np.ndarray, ...]
    """theta[k][j] = P(z_k = 1 | parents of k in their j-th configuration), parents sorted."""
    code_ZM: np.ndarray
    """Noise-free context bits of each latent configuration."""
    token_of_Z: np.ndarray
    """Vocabulary index that names each configuration (an injection Z -> Y)."""
    mix_ZY: np.ndarray
    """Distribution of the token when it ignores z, one row per configuration."""
    context_noise: float
    token_noise: float

    @property
    def n_concepts(self) -> int:
        return self.graph.number_of_nodes()


def random_dag(n_concepts: int, kind: str, edges_per_node: float,
               rng: np.random.Generator) -> nx.DiGraph:
    """A chain 0 -> 1 -> ... or an Erdos-Renyi DAG (edges oriented along a random order)."""
    if kind == "chain":
        return nx.path_graph(n_concepts, create_using=nx.DiGraph)
    n_pairs = n_concepts * (n_concepts - 1) / 2
    p = min(1.0, edges_per_node * n_concepts / n_pairs)
    undirected = nx.gnp_random_graph(n_concepts, p, seed=int(rng.integers(2**31)))
    order = rng.permutation(n_concepts)
    rank = {int(node): i for i, node in enumerate(order)}
    dag = nx.DiGraph()
    dag.add_nodes_from(range(n_concepts))
    dag.add_edges_from((u, v) if rank[u] < rank[v] else (v, u) for u, v in undirected.edges)
    return dag


def all_configs(n_bits: int) -> np.ndarray:
    """Every binary vector of length ``n_bits`` as rows (index = binary number, bit 0 first)."""
    idx = np.arange(2**n_bits)
    return ((idx[:, None] >> np.arange(n_bits)[None, :]) & 1).astype(np.int8)


def _context_code(n_concepts: int, n_bits: int, rng: np.random.Generator) -> np.ndarray:
    """Bits of random relabellings of Z, as in appendix G.1: each permutation of the one-hot
    codes gives K binary variables; ``n_bits`` of the pooled variables are kept at random."""
    n_perm = -(-n_bits // n_concepts) + 1
    bits_ZK = all_configs(n_concepts)
    pool = np.concatenate([bits_ZK[rng.permutation(2**n_concepts)] for _ in range(n_perm)], 1)
    return pool[:, rng.choice(pool.shape[1], n_bits, replace=False)]


def make_model(cfg: TheoryConfig, graph_seed: int, context_noise: float,
               token_noise: float) -> LatentModel:
    """Draw graph, CPTs, context code and token channel from ``graph_seed`` (not from the noises,
    so that one graph is compared with itself along the knob)."""
    rng = np.random.default_rng([cfg.seed, graph_seed])
    dag = random_dag(cfg.n_concepts, cfg.graph, cfg.edges_per_node, rng)
    theta = tuple(rng.uniform(0.2, 0.8, size=2 ** dag.in_degree(k))
                  for k in range(cfg.n_concepts))
    n_z = 2**cfg.n_concepts
    code = _context_code(cfg.n_concepts, cfg.context_bits, rng)
    token_of_z = rng.permutation(n_z + cfg.vocab_extra)[:n_z]
    mix = rng.dirichlet(np.ones(n_z + cfg.vocab_extra), size=n_z)
    return LatentModel(dag, theta, code, token_of_z, mix, float(context_noise), float(token_noise))


def log_prior_Z(model: LatentModel) -> np.ndarray:
    """log p(z) = sum_k log p(z_k | pa_k) for every configuration (the DAG factorisation)."""
    z_ZK = all_configs(model.n_concepts)
    logp_Z = np.zeros(len(z_ZK))
    for k in range(model.n_concepts):
        parents = sorted(model.graph.predecessors(k))
        pa_index = (z_ZK[:, parents] << np.arange(len(parents))).sum(1) if parents else 0
        p1 = model.theta[k][pa_index]
        logp_Z += np.where(z_ZK[:, k] == 1, np.log(p1), np.log1p(-p1))
    return logp_Z


def log_context_likelihood_XZ(model: LatentModel) -> np.ndarray:
    """log p(x|z): independent bit flips, so it depends only on the Hamming distance."""
    x_XM = all_configs(model.code_ZM.shape[1]).astype(float)
    c_ZM = model.code_ZM.astype(float)
    dist_XZ = x_XM @ (1 - c_ZM).T + (1 - x_XM) @ c_ZM.T
    eta = model.context_noise
    return dist_XZ * np.log(eta) + (c_ZM.shape[1] - dist_XZ) * np.log1p(-eta)


def token_likelihood_ZY(model: LatentModel) -> np.ndarray:
    """p(y|z) = (1 - eta) [y names z] + eta * mix_z(y)."""
    n_z = len(model.token_of_Z)
    named_ZY = np.zeros_like(model.mix_ZY)
    named_ZY[np.arange(n_z), model.token_of_Z] = 1.0
    return (1 - model.token_noise) * named_ZY + model.token_noise * model.mix_ZY


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


def invertibility_error_X(post_XZ: np.ndarray) -> np.ndarray:
    """Definition 2.1 as we read it: eps(x) = 1 - p(z_hat(x) | x), z_hat the posterior's mode.

    eps = 0 means x pins down z (the map is invertible at x); the posterior is then
    (1 - eps) delta_{z_hat} + eps q(z|x) with q a distribution on the other configurations."""
    return 1.0 - post_XZ.max(1)


def sample(model: LatentModel, n: int, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ancestral samples (z index, x index, y index), for Monte Carlo checks of the enumeration."""
    z_NK = np.zeros((n, model.n_concepts), dtype=np.int64)
    for k in nx.topological_sort(model.graph):
        parents = sorted(model.graph.predecessors(k))
        pa_index = (z_NK[:, parents] << np.arange(len(parents))).sum(1) if parents else 0
        z_NK[:, k] = rng.random(n) < model.theta[k][pa_index]
    z_N = (z_NK << np.arange(model.n_concepts)).sum(1)
    flips_NM = rng.random((n, model.code_ZM.shape[1])) < model.context_noise
    x_NM = model.code_ZM[z_N] ^ flips_NM
    x_N = (x_NM.astype(np.int64) << np.arange(x_NM.shape[1])).sum(1)
    cum_NY = np.cumsum(token_likelihood_ZY(model)[z_N], 1)
    y_N = np.minimum((rng.random((n, 1)) > cum_NY).sum(1), cum_NY.shape[1] - 1)
    return z_N, x_N, y_N
