"""Specification of ipta.simulations.masked_mlp: the masked next-token MLPs of Figure 2, trained
all at once (stacked and padded) or one at a time, with the same result."""

import numpy as np
import torch

from ipta.simulations.config import Config as SimulationConfig
from ipta.simulations.masked_mlp import train_batched, train_single
from ipta.simulations.problems import Setting, make_problem, training_data
from ipta.simulations.sweep import stack_runs

TINY = dict(steps=12, batch_size=32, hidden=32, embed_dim=8, n_layers=3, n_fit=200, n_score=200)


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
