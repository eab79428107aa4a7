"""Specification of ipta.simulations.sweep: the Figure 2 sweep's probes and evaluation (the
problems, the training paths and the chapter have their own test files)."""

import numpy as np
import pytest

from ipta.simulations.config import Config as SimulationConfig
from ipta.simulations.problems import Setting
from ipta.simulations.sweep import probe_accuracy, probed_positions, results_frame, run_sweep

TINY = dict(steps=12, batch_size=32, hidden=32, embed_dim=8, n_layers=3, n_fit=200, n_score=200)


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


def test_the_unseen_readout_tells_a_concept_code_from_a_lookup_table():
    """A planted test of the readout that can fail. Two representations of the same samples of
    K = 5 latents: one writes each latent along its own direction (a concept code), the other
    gives each configuration a random vector (a lookup table, which separates any finite set
    of configurations). Probes fitted and scored on the same configurations read both almost
    perfectly; scored on configurations held out of fitting, the concept code stays above 0.95
    and the lookup table falls to chance (below 0.7, where 0.5 is chance)."""
    from ipta.latent.dag import all_configs
    from ipta.simulations.sweep import probe_accuracy, unseen_accuracy, unseen_split

    rng = np.random.default_rng(0)
    configs_CK = all_configs(5)
    config_N = rng.integers(len(configs_CK), size=2000)
    latents_NK = configs_CK[config_N].astype(float)
    concept_code = latents_NK @ rng.standard_normal((5, 40)) + 0.1 * rng.standard_normal(
        (2000, 40))
    lookup = rng.standard_normal((len(configs_CK), 40))[config_N]
    held_N = unseen_split(config_N, configs_CK, 0.25, np.random.default_rng(1))
    for f in (concept_code, lookup):
        seen = probe_accuracy(f[:1000], latents_NK[:1000], f[1000:], latents_NK[1000:], 1.0)
        assert seen.mean() > 0.95
    assert unseen_accuracy(concept_code, latents_NK, held_N, 1.0).mean() > 0.95
    assert unseen_accuracy(lookup, latents_NK, held_N, 1.0).mean() < 0.7


def test_held_out_configurations_keep_both_values_of_every_latent_on_each_side():
    from ipta.latent.dag import all_configs
    from ipta.simulations.sweep import unseen_split

    configs_CK = all_configs(4)
    config_N = np.arange(16).repeat(3)
    held_N = unseen_split(config_N, configs_CK, 0.25, np.random.default_rng(2))
    assert held_N.mean() == pytest.approx(0.25)
    for side in (held_N, ~held_N):
        assert all(len(np.unique(configs_CK[config_N[side], k])) == 2 for k in range(4))


def test_probing_over_worker_processes_equals_the_one_process_loop(monkeypatch):
    """Every run's probes are one task (:func:`ipta.parallel.parallel_map`), and training is
    split over the cores too: two workers give exactly the arrays of one process, losses and
    NaN padding included."""
    import ipta.parallel

    cfg = SimulationConfig(chain_observed=(5,), er_graphs=("ER1",), er_latents=(4,), seeds=(0,),
                           positions_probed=3, **TINY)
    monkeypatch.setattr(ipta.parallel, "cores", lambda: 2)
    two, _ = run_sweep(cfg, progress=False)
    monkeypatch.setattr(ipta.parallel, "cores", lambda: 1)
    one, _ = run_sweep(cfg, progress=False)
    assert two.keys() == one.keys()
    for name in one:
        np.testing.assert_array_equal(two[name], one[name], err_msg=name)


def test_training_split_over_cores_is_the_one_stacked_model_bit_for_bit(monkeypatch):
    """Three runs of different m shared out over two workers (one run, then two) give every
    weight, BatchNorm statistic and loss of the one stacked model exactly: each part is padded
    to the sweep's largest m, as the whole is."""
    import torch

    import ipta.parallel
    from ipta.simulations.masked_mlp import train_batched
    from ipta.simulations.problems import make_problem, training_data
    from ipta.simulations.sweep import train_over_cores

    cfg = SimulationConfig(**TINY)
    settings = [Setting("left", "chain", 3, 2, 0), Setting("left", "chain", 3, 6, 1),
                Setting("right", "ER2", 4, 8, 0)]
    problems = [make_problem(s, cfg) for s in settings]
    datas = [training_data(p, cfg) for p in problems]
    whole = train_batched(problems, datas, cfg, progress=False)
    monkeypatch.setattr(ipta.parallel, "cores", lambda: 2)
    split = train_over_cores(problems, datas, cfg, torch.device("cpu"), progress=False)
    for key in ("init", "trained", "init_buffers", "buffers"):
        assert split[key].keys() == whole[key].keys()
        for name, value in whole[key].items():
            assert torch.equal(split[key][name], value), (key, name)
    np.testing.assert_array_equal(split["loss_ST"], whole["loss_ST"])
