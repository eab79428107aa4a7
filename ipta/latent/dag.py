"""The latent concepts of the paper's model (section 2, Eq. 1; appendix G.1): binary variables
on a DAG with Bernoulli conditionals.

``z_1..z_K`` live on a directed acyclic graph; each is Bernoulli given its parents, with one
parameter per parent configuration drawn from U[0.2, 0.8]. Configurations of all K latents are
indexed by ``c = sum_k z_k 2^k`` (latent k is bit k of c), so the exact joint is a vector of
``C = 2^K`` probabilities. Both the theory chapter (exact enumeration) and the simulations
(sampling) use this one implementation.
"""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np


@dataclasses.dataclass(frozen=True)
class BernoulliDAG:
    """A DAG over K binary latents and its conditional tables.

    ``tables[k][j]`` is P(z_k = 1 | parents of k in configuration j), where parent p_i (the
    i-th of ``sorted(graph.predecessors(k))``) is bit i of j.
    """

    graph: nx.DiGraph
    tables: tuple[np.ndarray, ...]

    @property
    def n_latents(self) -> int:
        return self.graph.number_of_nodes()

    def parents(self, k: int) -> list[int]:
        return sorted(self.graph.predecessors(k))


def chain_graph(n_latents: int) -> nx.DiGraph:
    """The chain z_0 -> z_1 -> ... -> z_{K-1} of Figure 2 (left)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n_latents))
    graph.add_edges_from((k, k + 1) for k in range(n_latents - 1))
    return graph


def erdos_renyi_dag(n_latents: int, edges_per_node: float, rng: np.random.Generator
                    ) -> nx.DiGraph:
    """An ERk DAG: ``edges_per_node * K`` expected edges (Figure 2 right), acyclic by construction.

    An undirected G(K, p) graph from networkx is oriented along a random order of the nodes, so
    every edge points forward in that order.  With K(K-1)/2 possible edges, p = 2k/(K-1); when
    that exceeds 1 (ER3 with K <= 7, ER2 with K <= 5) the graph is complete and the expected
    edge count is K(K-1)/2, fewer than k*K: small ERk graphs cannot be as dense as their name says.
    """
    n_pairs = n_latents * (n_latents - 1) / 2
    p = min(1.0, edges_per_node * n_latents / n_pairs) if n_pairs else 0.0
    undirected = nx.gnp_random_graph(n_latents, p, seed=int(rng.integers(2**31)))
    rank = np.empty(n_latents, dtype=int)
    rank[rng.permutation(n_latents)] = np.arange(n_latents)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n_latents))
    graph.add_edges_from((u, v) if rank[u] < rank[v] else (v, u) for u, v in undirected.edges)
    return graph


def random_tables(graph: nx.DiGraph, rng: np.random.Generator,
                  low: float = 0.2, high: float = 0.8) -> BernoulliDAG:
    """Draw every Bernoulli parameter of every node from U[low, high] (appendix G.1)."""
    tables = tuple(rng.uniform(low, high, size=2 ** graph.in_degree(k))
                   for k in range(graph.number_of_nodes()))
    return BernoulliDAG(graph=graph, tables=tables)


def all_configs(n_latents: int) -> np.ndarray:
    """``configs_CK``: row c holds the K bits of configuration index c (latent k = bit k).

    Also enumerates any other bit vectors by index, e.g. the theory chapter's contexts."""
    c = np.arange(2 ** n_latents)
    return ((c[:, None] >> np.arange(n_latents)[None, :]) & 1).astype(np.uint8)


def _parent_index(dag: BernoulliDAG, k: int, latents_NK: np.ndarray) -> np.ndarray:
    """Row of node k's table for each sample: parent i contributes bit i."""
    idx = np.zeros(latents_NK.shape[0], dtype=np.int64)
    for i, p in enumerate(dag.parents(k)):
        idx |= latents_NK[:, p].astype(np.int64) << i
    return idx


def p_one_CK(dag: BernoulliDAG) -> np.ndarray:
    """``P(z_k = 1 | pa_k)`` of every node k with its parents as in configuration c."""
    configs_CK = all_configs(dag.n_latents)
    return np.stack([dag.tables[k][_parent_index(dag, k, configs_CK)]
                     for k in range(dag.n_latents)], axis=1)


def joint_probs(dag: BernoulliDAG) -> np.ndarray:
    """``probs_C``: the exact joint P(z = configuration c), the product of the conditionals."""
    configs_CK, p1_CK = all_configs(dag.n_latents), p_one_CK(dag)
    probs_C = np.ones(len(configs_CK))
    for k in range(dag.n_latents):
        probs_C *= np.where(configs_CK[:, k] == 1, p1_CK[:, k], 1.0 - p1_CK[:, k])
    return probs_C


def log_joint_probs(dag: BernoulliDAG) -> np.ndarray:
    """``logp_C``: log p(z) = sum_k log p(z_k | pa_k) (Eq. 1), summed in log space so that the
    theory chapter's small probabilities keep their precision."""
    configs_CK, p1_CK = all_configs(dag.n_latents), p_one_CK(dag)
    logp_C = np.zeros(len(configs_CK))
    for k in range(dag.n_latents):
        logp_C += np.where(configs_CK[:, k] == 1, np.log(p1_CK[:, k]), np.log1p(-p1_CK[:, k]))
    return logp_C


def sample_latents(dag: BernoulliDAG, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """``latents_NK`` by ancestral sampling: each node drawn after its parents, in topological order."""
    latents_NK = np.zeros((n_samples, dag.n_latents), dtype=np.uint8)
    for k in nx.topological_sort(dag.graph):
        p1 = dag.tables[k][_parent_index(dag, k, latents_NK)]
        latents_NK[:, k] = rng.random(n_samples) < p1
    return latents_NK


def config_index(latents_NK: np.ndarray) -> np.ndarray:
    """Configuration index c of each sample (the inverse of :func:`all_configs`)."""
    weights = 1 << np.arange(latents_NK.shape[1], dtype=np.int64)
    return latents_NK.astype(np.int64) @ weights


def random_graph(kind: str, n_latents: int, rng: np.random.Generator,
                 edges_per_node: float | None = None) -> nx.DiGraph:
    """``kind`` is ``"chain"``, ``"ER<k>"`` (e.g. ``"ER2"``: k edges per node) or ``"er"`` with
    ``edges_per_node`` given (any non-negative number)."""
    if kind == "chain":
        return chain_graph(n_latents)
    if kind.startswith("ER") and kind[2:].isdigit():
        return erdos_renyi_dag(n_latents, int(kind[2:]), rng)
    if kind == "er" and edges_per_node is not None:
        return erdos_renyi_dag(n_latents, edges_per_node, rng)
    raise ValueError(f"graph kind {kind!r} is not allowed; use 'chain', 'ER<k>' such as 'ER1', "
                     "or 'er' with edges_per_node")


def make_dag(kind: str, n_latents: int, rng: np.random.Generator, low: float = 0.2,
             high: float = 0.8, edges_per_node: float | None = None) -> BernoulliDAG:
    """A random graph (see :func:`random_graph`) with tables drawn from U[low, high]."""
    return random_tables(random_graph(kind, n_latents, rng, edges_per_node), rng, low, high)
