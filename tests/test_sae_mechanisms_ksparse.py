"""Specification of ipta.sae.mechanisms.ksparse: top-k, batch-top-k and AuxK."""

import pytest
import torch

from ipta.sae.mechanisms.ksparse import BatchTopK, auxk_loss
from ipta.sae.model import SparseAutoencoder


def _sae(name, d=8, f=16, seed=0):
    return SparseAutoencoder(d, f, name, {"k": 3}, seed=seed)


def test_topk_gives_exactly_k_active_features_when_preactivations_are_positive():
    sae = _sae("topk")
    with torch.no_grad():
        sae.b_enc_F.fill_(100.0)  # every pre-activation positive, so the ReLU removes none
    codes = sae.encode(torch.randn(50, 8))
    assert ((codes != 0).sum(1) == 3).all()


def test_batchtopk_keeps_k_times_batch_codes_in_training():
    mech = BatchTopK(k=3)
    pre = torch.rand(20, 16) + 0.1
    assert int((mech.train_codes(pre) != 0).sum()) == 3 * 20


@pytest.mark.parametrize("positive_share", [0.9, 0.3, 0.01, 0.0])
def test_batchtopk_training_codes_are_the_k_n_largest_of_the_batch(positive_share):
    """Whatever share of the codes is positive (the quick candidate set of the selection, its
    fallback to every positive code, none positive), the kept codes are exactly the plain
    top-(k N) of the batch's ReLU values."""
    g = torch.Generator().manual_seed(3)
    pre = torch.randn(64, 256, generator=g) + torch.tensor(positive_share).clamp(1e-6, 1 - 1e-6
                                                                              ).logit() / 1.7
    if positive_share == 0.0:
        pre = -pre.abs()
    mech = BatchTopK(k=4)
    acts = pre.relu().flatten()
    top = acts.topk(4 * 64)
    expected = torch.zeros_like(acts).scatter(0, top.indices, top.values).view_as(pre)
    assert torch.equal(mech.train_codes(pre), expected)


def test_batchtopk_candidates_hold_the_n_largest_values_and_only_positive_ones():
    g = torch.Generator().manual_seed(4)
    acts = torch.randn(100_000, generator=g).relu()
    n_positive = int((acts > 0).sum())
    for n in (1, 50, 3000, 60_000):  # the last is more than there are positive values
        cand = BatchTopK.candidates(acts, n)
        m = min(n, n_positive)
        assert (cand > 0).all() and cand.numel() >= m
        assert torch.equal(cand.topk(m).values, acts.topk(m).values)
    assert BatchTopK.candidates(acts, 100).numel() < 1000  # few pass, not every positive one


def test_batchtopk_uses_its_threshold_at_inference():
    sae = _sae("batchtopk")
    sae.mechanism.threshold.fill_(0.3)
    x = torch.randn(30, 8, generator=torch.Generator().manual_seed(2))
    pre = sae.pre_activations(x * sae.input_scale).relu()
    torch.testing.assert_close(sae.encode(x), pre * (pre > 0.3))


def test_batchtopk_threshold_is_the_first_minimum_then_a_moving_average():
    mech = BatchTopK(k=1, beta=0.5)
    mech.observe(torch.tensor([[0.0, 2.0], [4.0, 0.0]]), step=0)
    assert float(mech.threshold) == 2.0
    mech.observe(torch.tensor([[1.0, 0.0]]), step=1)
    assert float(mech.threshold) == pytest.approx(1.5)


def test_a_calibrated_batch_top_k_keeps_k_codes_per_sample_on_its_calibration_batch():
    mech = BatchTopK(k=6)
    pre = torch.randn(200, 64, generator=torch.Generator().manual_seed(0))
    mech.calibrate(pre)
    assert (mech(pre) != 0).sum(1).float().mean().item() == pytest.approx(6.0)


def test_auxk_is_zero_without_dead_features_and_trains_only_dead_ones():
    gen = torch.Generator().manual_seed(1)
    pre = torch.randn(16, 10, generator=gen, requires_grad=True)
    W = torch.randn(10, 4, generator=gen, requires_grad=True)
    residual = torch.randn(16, 4, generator=gen)
    assert auxk_loss(pre, residual, torch.zeros(10, dtype=torch.bool), W, 3) == 0
    dead = torch.arange(10) >= 7
    loss = auxk_loss(pre, residual, dead, W, 3)
    loss.backward()
    assert loss > 0
    assert (pre.grad[:, ~dead] == 0).all() and (W.grad[~dead] == 0).all()
    assert W.grad[dead].abs().sum() > 0


def test_auxk_is_one_when_the_dead_features_reconstruct_nothing():
    """Normalised by the residual's variance: an all-negative pre-activation gives codes 0,
    so the error is the residual's own mean square around zero over its variance."""
    residual = torch.randn(64, 5, generator=torch.Generator().manual_seed(2))
    residual -= residual.mean(0)
    loss = auxk_loss(-torch.ones(64, 8), residual, torch.ones(8, dtype=torch.bool),
                     torch.randn(8, 5), 4)
    assert loss.item() == pytest.approx(1.0, rel=1e-5)
