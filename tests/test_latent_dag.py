"""Specifications of ipta.latent.dag: random DAGs over binary latents and their Bernoulli tables."""

import networkx as nx
import numpy as np
import pytest

from ipta.latent.dag import (all_configs, config_index, joint_probs, make_dag, sample_latents)


@pytest.mark.parametrize("kind", ["chain", "ER1", "ER2", "ER3"])
@pytest.mark.parametrize("n_latents", [3, 6, 8])
def test_every_graph_is_acyclic(kind, n_latents):
    """Chains and ERk graphs are DAGs for every seed tried."""
    for seed in range(20):
        dag = make_dag(kind, n_latents, np.random.default_rng(seed))
        assert nx.is_directed_acyclic_graph(dag.graph)
        assert dag.n_latents == n_latents


@pytest.mark.parametrize("k,n_latents", [(1, 8), (2, 8), (1, 6)])
def test_er_expected_edge_count_is_k_times_n(k, n_latents):
    """Mean edge count over 400 graphs is k*K within 3 standard errors (binomial)."""
    counts = [make_dag(f"ER{k}", n_latents, np.random.default_rng(s)).graph.number_of_edges()
              for s in range(400)]
    n_pairs = n_latents * (n_latents - 1) / 2
    p = k * n_latents / n_pairs
    se = np.sqrt(n_pairs * p * (1 - p) / len(counts))
    assert abs(np.mean(counts) - k * n_latents) < 3 * se


def test_dense_er_saturates_to_complete_graph():
    """ER3 on 5 nodes asks for 15 edges of 10 possible: the graph is complete."""
    assert make_dag("ER3", 5, np.random.default_rng(0)).graph.number_of_edges() == 10


def test_tables_lie_in_the_stated_interval():
    """Every Bernoulli parameter is in [0.2, 0.8] and each node has 2^parents of them."""
    dag = make_dag("ER2", 7, np.random.default_rng(1))
    for k in range(7):
        assert len(dag.tables[k]) == 2 ** len(dag.parents(k))
        assert dag.tables[k].min() >= 0.2 and dag.tables[k].max() <= 0.8


def test_joint_is_a_distribution():
    """The exact joint sums to one over the 2^K configurations."""
    probs = joint_probs(make_dag("ER3", 6, np.random.default_rng(2)))
    assert probs.shape == (64,) and np.isclose(probs.sum(), 1.0) and (probs > 0).all()


def test_samples_match_the_conditional_tables():
    """Empirical P(z_k=1 | parents) from 200k ancestral samples is within 0.01 of the table."""
    dag = make_dag("chain", 3, np.random.default_rng(3))
    z = sample_latents(dag, 200_000, np.random.default_rng(4))
    for parent_value in (0, 1):
        rows = z[:, 0] == parent_value
        assert abs(z[rows, 1].mean() - dag.tables[1][parent_value]) < 0.01
    assert abs(z[:, 0].mean() - dag.tables[0][0]) < 0.01


def test_sample_frequencies_match_the_exact_joint():
    """Configuration frequencies of 200k samples are within 0.006 of the exact joint (ER2, K=5)."""
    dag = make_dag("ER2", 5, np.random.default_rng(5))
    freq = np.bincount(config_index(sample_latents(dag, 200_000, np.random.default_rng(6))),
                       minlength=32) / 200_000
    assert np.abs(freq - joint_probs(dag)).max() < 0.006


def test_config_index_inverts_all_configs():
    """config_index(all_configs(K)) is 0..2^K-1 (latent k is bit k)."""
    assert (config_index(all_configs(5)) == np.arange(32)).all()


def test_seeded_sampling_is_reproducible():
    """Same generator seed, same samples (exact regression of the first rows)."""
    dag = make_dag("ER1", 4, np.random.default_rng(7))
    a = sample_latents(dag, 50, np.random.default_rng(8))
    b = sample_latents(dag, 50, np.random.default_rng(8))
    assert (a == b).all()


def test_unknown_graph_kind_is_refused():
    """A kind other than chain/ERk raises an error naming the allowed kinds."""
    with pytest.raises(ValueError, match="chain"):
        make_dag("tree", 4, np.random.default_rng(0))
