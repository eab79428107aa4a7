"""Specifications of ipta.simulations (problems, masked_mlp, sweep, chapter): the Figure 2 sweep
and its two training paths."""

import numpy as np
import pytest
import torch

from ipta.config import ConfigError
from ipta.simulations.config import Config as SimulationConfig
from ipta.simulations.masked_mlp import train_batched, train_single
from ipta.simulations.problems import Setting, make_problem, sweep_settings, training_data
from ipta.simulations.sweep import (probe_accuracy, probed_positions, results_frame, run_sweep,
                                  stack_runs)

TINY = dict(steps=12, batch_size=32, hidden=32, embed_dim=8, n_layers=3, n_fit=200, n_score=200)


def test_profiles_build_and_bad_values_are_refused():
    """Every profile validates; an unknown graph kind and a reversed interval raise ConfigError."""
    for profile in ("smoke", "classroom", "default", "paper"):
        SimulationConfig.for_profile(profile)
    with pytest.raises(ConfigError, match="er_graphs"):
        SimulationConfig(er_graphs=("ER9",))
    with pytest.raises(ConfigError, match="table_low"):
        SimulationConfig(table_low=0.9, table_high=0.1)


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


def _runs(cfg):
    settings = [Setting("left", "chain", 3, 2, 0), Setting("left", "chain", 3, 6, 1),
                Setting("right", "ER2", 4, 8, 0)]
    problems = [make_problem(s, cfg) for s in settings]
    return problems, [training_data(p, cfg) for p in problems]


def test_batched_training_equals_one_at_a_time():
    """Stacked (padded) training gives each run's weights, BatchNorm statistics and losses of
    plain per-run torch modules, to 1e-4, across runs with different m and K."""
    cfg = SimulationConfig(**TINY)
    problems, datas = _runs(cfg)
    batched = train_batched(problems, datas, cfg, progress=False)
    single = stack_runs([train_single(p, d, cfg, n_pad=8) for p, d in zip(problems, datas)])
    for key in ("trained", "buffers"):
        for name, value in batched[key].items():
            torch.testing.assert_close(value, single[key][name], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(batched["loss_ST"], single["loss_ST"], atol=1e-4)


def test_padded_weights_stay_zero_and_training_lowers_the_loss():
    """Weights of padded positions remain exactly zero; the mean loss falls during training."""
    cfg = SimulationConfig(**dict(TINY, steps=40))
    problems, datas = _runs(cfg)
    out = train_batched(problems, datas, cfg, progress=False)
    assert (out["trained"]["head_W"][0, :, 2:] == 0).all()
    assert (out["trained"]["emb"][0, 6:] == 0).all()
    loss = out["loss_ST"].mean(0)
    assert loss[-5:].mean() < loss[:5].mean()


def test_probe_accuracy_is_high_when_invertible_and_lower_when_not():
    """Chain of 3, trained features: mean probe accuracy > 0.9 at m=9 (invertible) and at least
    0.1 lower at m=2 (at most 4 codes for 8 configurations), on the same seeds."""
    cfg = SimulationConfig(steps=120, batch_size=64, hidden=64, embed_dim=16, n_fit=400, n_score=400)
    settings = [Setting("left", "chain", 3, m, s) for m in (2, 9) for s in (0, 1)]
    df = results_frame(*run_sweep(cfg, progress=False, settings=settings))
    easy = df[df.n_observed == 9].trained.mean()
    hard = df[df.n_observed == 2].trained.mean()
    assert easy > 0.9
    assert hard < easy - 0.1
    assert (df.identified_share[df.n_observed == 9] == 1.0).all()


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


def test_thread_setting_is_restored_after_training():
    """Training on one torch thread leaves the caller's thread count as it was."""
    from ipta.devices import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_per_position_probe_recovers_a_code_that_the_pooled_probe_misses():
    """A latent written along +e_0 when position 0 is masked and along -e_0 when position 1 is:
    probes fitted per masked position read it perfectly, one pooled probe is at chance."""
    rng = np.random.default_rng(0)
    z_N, pos_N = rng.integers(2, size=2000), rng.integers(2, size=2000)
    feats_NF = 0.1 * rng.normal(size=(2000, 5))
    feats_NF[:, 0] += (2 * z_N - 1) * (1 - 2 * pos_N)
    fit, score = np.arange(2000) < 1000, np.arange(2000) >= 1000
    pooled = probe_accuracy(feats_NF[fit], z_N[fit, None], feats_NF[score], z_N[score, None], 1.0)
    assert abs(pooled[0] - 0.5) < 0.06
    for j in (0, 1):
        a, b = fit & (pos_N == j), score & (pos_N == j)
        assert probe_accuracy(feats_NF[a], z_N[a, None], feats_NF[b], z_N[b, None], 1.0)[0] > 0.99


def test_probed_positions_are_evenly_spaced_and_include_both_ends():
    np.testing.assert_array_equal(probed_positions(12, 4), [0, 4, 7, 11])
    np.testing.assert_array_equal(probed_positions(3, 4), [0, 1, 2])


def test_evaluation_reports_every_layer_and_position_and_the_last_layer_is_the_pooled_probe():
    cfg = SimulationConfig(chain_observed=(5,), er_graphs=("ER1",), er_latents=(4,), seeds=(0,),
                           positions_probed=3, **TINY)
    arrays, _ = run_sweep(cfg, progress=False)
    assert arrays["acc_layer_trained_SLK"].shape[1] == cfg.n_layers
    np.testing.assert_array_equal(arrays["acc_layer_trained_SLK"][:, -1], arrays["acc_trained_SK"])
    np.testing.assert_array_equal(arrays["positions_SP"], [[0, 2, 4], [0, 6, 11]])
    k_chain = cfg.chain_latents
    assert np.isfinite(arrays["acc_pos_untrained_SPK"][0, :, :k_chain]).all()
    assert np.isnan(arrays["acc_pos_untrained_SPK"][0, :, k_chain:]).all()
