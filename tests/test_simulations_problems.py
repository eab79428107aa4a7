"""Specification of ipta.simulations.problems: one problem per run of Figure 2, its DAG,
observation map and data drawn from the run's own seeded streams, and its exact measures."""

import numpy as np
import pytest

from ipta.simulations.config import Config as SimulationConfig
from ipta.simulations.problems import Setting, make_problem, sweep_settings, training_data


def test_sweep_covers_both_panels_for_every_seed():
    """Default sweep: chain runs for each m and ER runs for each kind and K, times every seed."""
    cfg = SimulationConfig()
    settings = sweep_settings(cfg)
    n_left = len(cfg.chain_observed) * len(cfg.seeds)
    assert len(settings) == n_left + len(cfg.er_graphs) * len(cfg.er_latents) * len(cfg.seeds)
    assert all(s.n_observed == cfg.er_observed_per_latent * s.n_latents for s in settings[n_left:])


def test_runs_with_different_m_share_the_dag_and_nest_observations():
    """Same seed, m=3 and m=9: identical Bernoulli tables; the m=3 code is the prefix of the m=9 one."""
    cfg = SimulationConfig()
    a = make_problem(Setting("left", "chain", 3, 3, 4), cfg)
    b = make_problem(Setting("left", "chain", 3, 9, 4), cfg)
    assert all((ta == tb).all() for ta, tb in zip(a.dag.tables, b.dag.tables))
    assert (b.obs.code_CM[:, :3] == a.obs.code_CM).all()


def test_loss_floor_is_the_brute_force_conditional_entropy():
    """The exact masked-token loss floor equals H(x_j | x_-j) averaged over j, computed here by
    summing over every configuration; it is 0 for an invertible chain (m=9) and positive at m=2."""
    from collections import defaultdict

    cfg = SimulationConfig()
    for m, positive in ((2, True), (9, False)):
        p = make_problem(Setting("left", "chain", 3, m, 0), cfg)
        code_CM, total = p.obs.code_CM, 0.0
        for j in range(m):
            mass = defaultdict(lambda: np.zeros(2))
            for c, prob in enumerate(p.probs_C):
                mass[tuple(np.delete(code_CM[c], j))][code_CM[c, j]] += prob
            for m2 in mass.values():
                total -= sum(v * np.log(v / m2.sum()) for v in m2 if v > 0)
        floor = p.invertibility()["loss_floor"]
        assert floor == pytest.approx(total / m, abs=1e-12)
        assert (floor > 0.05) if positive else (floor < 1e-12)


def test_training_data_is_a_function_of_the_run_and_differs_between_seeds():
    cfg = SimulationConfig(steps=5, batch_size=8, n_fit=20, n_score=20)
    problem = make_problem(Setting("left", "chain", 3, 4, 0), cfg)
    a, b = training_data(problem, cfg), training_data(problem, cfg)
    assert a["train_config_TB"].shape == a["train_masked_TB"].shape == (5, 8)
    assert a["eval_config_N"].shape == (40,)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    other = training_data(make_problem(Setting("left", "chain", 3, 4, 1), cfg), cfg)
    assert not np.array_equal(a["train_config_TB"], other["train_config_TB"])
    assert (a["train_masked_TB"] < 4).all() and (a["train_config_TB"] < 2**3).all()
